"""A bare encoder as a method: the frozen random-init baseline, or any pre-trained encoder."""

from __future__ import annotations

from torch import nn

from ssl_lightning.methods.base import SSLMethod


class FrozenEncoder(SSLMethod):
    """Wraps an encoder so evaluations can probe it; it has nothing to train."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__(encoder)
        self.save_hyperparameters()
        self.encoder.requires_grad_(False)

    def training_step(self, batch, batch_idx):  # noqa: D102
        raise RuntimeError("FrozenEncoder has nothing to train; use it with `ssl-lightning evaluate`")
