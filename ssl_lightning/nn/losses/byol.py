"""BYOL regression loss (Grill et al., 2020): 2 - 2 cos(prediction, stop-gradient target)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def byol_loss(p: Tensor, z: Tensor) -> Tensor:
    """Mean over the batch of 2 - 2 cos(p_i, z_i): online predictions `p[B, D]` vs targets `z[B, D]`.

    `z` is detached (stop-gradient on the target branch). Per pair the value lies in [0, 4]:
    0 when parallel, 2 when orthogonal, 4 when opposite. Computed in float32.
    """
    if p.dim() != 2 or p.shape != z.shape:
        raise ValueError(
            f"p and z must be [B, D] with the same shape; got {tuple(p.shape)} and {tuple(z.shape)}"
        )
    cosine = F.cosine_similarity(p.float(), z.detach().float(), dim=1)
    return (2.0 - 2.0 * cosine).mean()


def symmetric_byol_loss(p0: Tensor, p1: Tensor, z0: Tensor, z1: Tensor) -> Tensor:
    """BYOL's symmetrised loss: `byol_loss(p0, z1) + byol_loss(p1, z0)`, in [0, 8].

    `p0`, `p1`: online predictions of view 0 / view 1 `[B, D]`; `z0`, `z1`: target projections of
    view 0 / view 1 `[B, D]` (detached here).
    """
    return byol_loss(p0, z1) + byol_loss(p1, z0)


class BYOLLoss(nn.Module):
    """Module form of `byol_loss`: `forward(p[B, D], z[B, D]) -> scalar` (z detached)."""

    def forward(self, p: Tensor, z: Tensor) -> Tensor:
        """`byol_loss(p, z)`: online predictions `p[B, D]` vs targets `z[B, D]` -> scalar in [0, 4]."""
        return byol_loss(p, z)
