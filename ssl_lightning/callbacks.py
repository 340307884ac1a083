"""Training-safety callbacks that every run gets from the CLI."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Stop training with a clear message as soon as the loss is not finite.

    It runs before checkpointing on the same batch, so the NaN state is never saved and the last
    good checkpoint stays the newest one on disk.
    """

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
            f"training loss is {value} at global step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {batch_idx}); training stopped. Last good checkpoint: {last or 'none saved yet'}. "
            "Try a lower optim.lr, gradient clipping (trainer.gradient_clip_val), or precision 32."
        )
