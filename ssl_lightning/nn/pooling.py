"""Pooling of frame/patch sequences into clip embeddings."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_mean(x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
    """Mean over the sequence axis of `x[B, N, D]`, ignoring positions where `padding_mask[B, N]` is True.

    A row whose positions are all padding yields zeros rather than NaN.
    """
    if padding_mask is None:
        return x.mean(dim=1)
    keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)


def masked_max(x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
    """Max over the sequence axis of `x[B, N, D]`, ignoring padded positions (all-padding rows give zeros)."""
    if padding_mask is None:
        return x.amax(dim=1)
    filled = x.masked_fill(padding_mask.unsqueeze(-1), torch.finfo(x.dtype).min)
    out = filled.amax(dim=1)
    return torch.where(padding_mask.all(dim=1, keepdim=True), torch.zeros_like(out), out)
