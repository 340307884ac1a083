"""Training-safety callbacks that every run gets from the CLI: a clear stop on a non-finite loss,
exact resumption (random states in the checkpoint), a checkpoint folder checked at fit start, a
resumable checkpoint on SIGTERM."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ssl_lightning.checkpoint_io import ensure_writable_folder


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Stop training with a clear message as soon as the loss is not finite.

    It runs before checkpointing on the same batch, so the NaN state is never saved and the last
    good checkpoint stays the newest one on disk. The message names the global step at which the
    batch was trained (the trainer's counter has already moved past it when the loss is seen).
    """

    def __init__(self) -> None:
        self.step = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self.step = trainer.global_step

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor) or torch.isfinite(loss).all():
            return
        ckpt = trainer.checkpoint_callback
        last = (ckpt.last_model_path or ckpt.best_model_path) if ckpt is not None else ""
        value = loss.detach().float().item() if loss.numel() == 1 else math.nan
        raise NonFiniteLossError(
            f"training loss is {value} at global step {self.step} (epoch {trainer.current_epoch}, "
            f"batch {batch_idx}); training stopped. Last good checkpoint: {last or 'none saved yet'}. "
            "Try a lower optim.lr, gradient clipping (trainer.gradient_clip_val), or precision 32."
        )


class RandomStateCheckpoint(L.Callback):
    """Saves the random states a training step draws from (torch CPU and CUDA, numpy, `random`) in
    every checkpoint, and restores them when training starts from one, so that views, masks and
    dropout after a resume are those of the uninterrupted run. (Data-side draws do not need it: the
    library's training loaders seed each item, see `ssl_lightning.data.resumable`.)"""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        """The states as tensors, strings and numbers (what `torch.load(weights_only=True)` reads)."""
        kind, keys, position, has_gauss, cached = np.random.get_state()
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached),
            "random": random.getstate(),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loaded = state_dict

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Restore the loaded states here, after the loaders are set up, just before the first step."""
        if self.loaded is None:
            return
        torch.set_rng_state(self.loaded["torch"])
        if self.loaded["cuda"]:
            torch.cuda.set_rng_state_all(self.loaded["cuda"])
        kind, keys, position, has_gauss, cached = self.loaded["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
        random.setstate(self.loaded["random"])
        self.loaded = None


class CheckpointGuard(L.Callback):
    """Checks at fit start that the checkpoint folder is writable (not at the first save, after
    training), and on SIGTERM saves a resumable `last.ckpt` there before Lightning stops the fit."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        if ckpt is None or ckpt.dirpath is None or not trainer.is_global_zero:
            return
        folder = Path(ckpt.dirpath)
        try:
            ensure_writable_folder(folder)
        except OSError as error:
            raise PermissionError(
                f"cannot write checkpoints to {folder} ({error}); pass a writable --checkpoint.dirpath"
            ) from error

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if not isinstance(exception, SIGTERMException):
            return
        ckpt = trainer.checkpoint_callback
        folder = Path(trainer.default_root_dir if ckpt is None or ckpt.dirpath is None else ckpt.dirpath)
        path = folder / "last.ckpt"
        trainer.save_checkpoint(path, weights_only=False)
        if trainer.is_global_zero:
            print(
                f"SIGTERM: stopped after global step {trainer.global_step}; saved a resumable checkpoint to "
                f"{path} (resume with --ckpt_path {path})",
                file=sys.stderr,
            )
