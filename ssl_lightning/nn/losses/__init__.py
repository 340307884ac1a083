"""Self-supervised losses (no Lightning dependency)."""

from ssl_lightning.nn.losses.byol import BYOLLoss, byol_loss, symmetric_byol_loss
from ssl_lightning.nn.losses.contrastive_quant import (
    Branch,
    ContrastiveQuantLoss,
    byol_pair_loss,
    embed_branches,
)
from ssl_lightning.nn.losses.ntxent import NTXentLoss

__all__ = [
    "BYOLLoss",
    "Branch",
    "ContrastiveQuantLoss",
    "NTXentLoss",
    "byol_loss",
    "byol_pair_loss",
    "embed_branches",
    "symmetric_byol_loss",
]
