"""Self-supervised losses (no Lightning dependency)."""

from ssl_lightning.nn.losses.byol import BYOLLoss, byol_loss, symmetric_byol_loss
from ssl_lightning.nn.losses.ntxent import NTXentLoss

__all__ = ["BYOLLoss", "NTXentLoss", "byol_loss", "symmetric_byol_loss"]
