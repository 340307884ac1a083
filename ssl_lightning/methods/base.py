"""What every method shares: the representation contract, optimisation, checkpoint identity.

A method owns an audio `encoder` (see `ssl_lightning.backbones`) and exposes
`embed(batch) -> [B, D]` and `embed_sequence(batch) -> [B, N, D]`, so every evaluation works with
every method without reaching into its internals.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info
from timm.models import group_parameters
from torch import Tensor, nn

from ssl_lightning.checkpoint_io import read_checkpoint
from ssl_lightning.nn.optim import OptimizerConfig, build_optimizer, build_scheduler
from ssl_lightning.nn.pooling import masked_mean

CLASS_KEY = "ssl_lightning_class"

# Methods deliberately keep their injected modules (encoder, tokenizer, teacher) in their
# hyper-parameters so that a checkpoint alone restores them; Lightning's advice to ignore them
# would break `load_method`.
warnings.filterwarnings("ignore", message=r"Attribute '\w+' is an instance of `nn.Module`")


def encoder_input(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
    """The encoder's `(x, padding_mask)` of a batch: `audio` [B, T] (+ `padding_mask`), `image`
    [B, C, H, W] (no mask) or `input_ids` [B, L] (+ `padding_mask`)."""
    for key in ("audio", "input_ids"):
        if key in batch:
            return batch[key], batch.get("padding_mask")
    if "image" in batch:
        return batch["image"], None
    raise KeyError(f"batch has none of 'audio', 'image', 'input_ids' (keys: {sorted(batch)})")


class SSLMethod(L.LightningModule):
    """Base LightningModule: representation contract + optimizer/schedule from `optim`.

    Args:
        encoder: audio encoder following the backbone contract.
        optim: optimizer and warmup + cosine schedule settings.
        compile: wrap the encoder with `torch.compile` when the model is configured.
    """

    def __init__(
        self, encoder: nn.Module, optim: OptimizerConfig | None = None, compile: bool = False
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.optim = optim or OptimizerConfig()
        self.compile = compile

    frozen_modules: tuple[str, ...] = ()
    """Attributes holding frozen submodules (a tokenizer, a teacher), kept in eval mode by `train()`."""

    @property
    def embed_dim(self) -> int:
        """Width D of the encoder's features (`embed` gives `[B, D]`)."""
        return self.encoder.embed_dim

    def train(self, mode: bool = True) -> SSLMethod:
        """Set the train/eval mode of every submodule; `frozen_modules` stay in eval mode."""
        super().train(mode)
        for module in self._frozen().values():
            module.eval()
        return self

    def _frozen(self) -> dict[str, nn.Module]:
        return {
            name: module for name in self.frozen_modules if (module := getattr(self, name, None)) is not None
        }

    def on_fit_start(self) -> None:
        """Say once that the frozen modules stay in eval mode by design, in place of Lightning's warning
        about modules in eval mode (which still fires when any other module is in eval mode)."""
        frozen = self._frozen()
        count = sum(1 for module in frozen.values() for m in module.modules() if not m.training)
        if count:
            warnings.filterwarnings("ignore", message=rf"Found {count} module\(s\) in eval mode")
            message = f"{', '.join(frozen)} frozen by design ({count} modules kept in eval mode)"
            rank_zero_info(f"{type(self).__name__}: {message}")

    def configure_model(self) -> None:
        """With `compile`, wrap the encoder in `torch.compile` (once, when a fit starts)."""
        if self.compile and not isinstance(self.encoder, torch._dynamo.eval_frame.OptimizedModule):
            self.encoder = torch.compile(self.encoder)

    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Encoder output for a batch: `(features[B, N, D], frame padding mask[B, N] or None)`. An encoder
        with `takes_batch = True` (several inputs, e.g. DABS's) reads its own keys of the batch dict."""
        if getattr(self.encoder, "takes_batch", False):
            return self.encoder(batch)
        return self.encoder(*encoder_input(batch))

    def mask_generator(self, step: int, batch_idx: int) -> torch.Generator:
        """The masks' random source for one batch: a function of the run seed, `step`, the batch index and
        the rank only (training passes the global step, validation -1), so masks do not depend on the
        global RNG history and a resumed run masks exactly as the uninterrupted one."""
        key = (torch.initial_seed(), step, batch_idx, self.global_rank)
        return torch.Generator(device=self.device).manual_seed(hash(key) & (2**63 - 1))

    def pool(self, features: Tensor, padding_mask: Tensor | None) -> Tensor:
        """The encoder's own pooling when it defines one, else the masked mean over frames."""
        pool = getattr(self.encoder, "pool", None)
        return pool(features, padding_mask) if pool is not None else masked_mean(features, padding_mask)

    def embed_sequence(self, batch: dict[str, Tensor]) -> Tensor:
        """Frame/patch embeddings `[B, N, D]` of the encoder."""
        return self.encode(batch)[0]

    def embed(self, batch: dict[str, Tensor]) -> Tensor:
        """Pooled clip embedding `[B, D]` (padding frames excluded)."""
        return self.pool(*self.encode(batch))

    def group_matcher(self, coarse: bool = False) -> Callable[[str], int]:
        """timm-style layer groups for layer-wise LR decay: the encoder's own `group_matcher` groups,
        then every other parameter (heads, predictors) in one last group."""
        encoder = getattr(self.encoder, "_orig_mod", self.encoder)
        if not hasattr(encoder, "group_matcher"):
            raise ValueError(
                f"optim.layer_decay needs an encoder with a timm-style group_matcher(); "
                f"{type(encoder).__name__} has none. Unset optim.layer_decay or add one."
            )
        layer_of = group_parameters(encoder, encoder.group_matcher(coarse=coarse), reverse=True)
        top = max(layer_of.values(), default=-1) + 1
        prefix = "encoder._orig_mod." if encoder is not self.encoder else "encoder."
        return lambda name: layer_of.get(name.removeprefix(prefix), top) if name.startswith(prefix) else top

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer and per-step LR schedule of `optim`, over `trainer.estimated_stepping_batches`."""
        optimizer = build_optimizer(self, self.optim)
        scheduler = build_scheduler(optimizer, self.optim, int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the method's class path under `checkpoint["ssl_lightning_class"]`, so `load_method` needs
        no recipe."""
        checkpoint[CLASS_KEY] = f"{type(self).__module__}.{type(self).__qualname__}"


def method_class(path: str) -> type[SSLMethod]:
    """Import the class named by a dotted path such as `ssl_lightning.methods.SupervisedClassifier`."""
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as err:
        raise ImportError(f"cannot import method class {path!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, SSLMethod)):
        raise TypeError(f"{path!r} is not an ssl_lightning method (SSLMethod subclass)")
    return cls


def load_method(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> SSLMethod:
    """Restore any method from its checkpoint alone (no recipe needed); FileNotFoundError or
    `CheckpointReadError` naming the file when it is missing or unreadable."""
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path, map_location=map_location, weights_only=False)
    if CLASS_KEY not in checkpoint:
        raise ValueError(
            f"{path} was not written by an ssl_lightning method (no {CLASS_KEY!r} entry); "
            "load it with its own LightningModule class"
        )
    cls = method_class(checkpoint[CLASS_KEY])
    return cls.load_from_checkpoint(path, map_location=map_location, weights_only=False)
