"""Self-supervised losses (no Lightning dependency)."""

from ssl_lightning.nn.losses.byol import BYOLLoss, byol_loss, symmetric_byol_loss
from ssl_lightning.nn.losses.contrastive_quant import (
    Branch,
    ContrastiveQuantLoss,
    byol_pair_loss,
    embed_branches,
)
from ssl_lightning.nn.losses.data2vec import (
    batch_norm_features,
    build_targets,
    feature_std,
    instance_norm_over_time,
    layer_norm_features,
    regression_loss,
)
from ssl_lightning.nn.losses.ntxent import NTXentLoss

__all__ = [
    "BYOLLoss",
    "Branch",
    "ContrastiveQuantLoss",
    "NTXentLoss",
    "batch_norm_features",
    "build_targets",
    "byol_loss",
    "byol_pair_loss",
    "embed_branches",
    "feature_std",
    "instance_norm_over_time",
    "layer_norm_features",
    "regression_loss",
    "symmetric_byol_loss",
]
