"""Random fixed-length segments along the time axis (axis 1) of a batch, cropped per sample in one gather."""

from __future__ import annotations

import torch
from torch import Tensor

from ssl_lightning.augment.sampling import random_offsets


def crop_segments(x: Tensor, length: int, offsets: Tensor) -> Tensor:
    """`x[B, T, ...]`, int64 `offsets[B]` -> `[B, length, ...]`: row b is `x[b, offsets[b]:][:length]`."""
    index = offsets[:, None] + torch.arange(length, device=x.device)
    index = index.view(*index.shape, *[1] * (x.dim() - 2)).expand(-1, -1, *x.shape[2:])
    return x.gather(1, index)


def random_segment(x: Tensor, length: int, generator: torch.Generator | None = None) -> Tensor:
    """A segment of `length` steps of every sample of `x[B, T, ...]`, at a uniform random offset in
    {0, ..., T - length} per sample. Inputs no longer than `length` are returned unchanged
    (`[B, min(T, length), ...]`)."""
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"segment length must be a positive int, got {length!r}")
    if x.dim() < 2:
        raise ValueError(f"random_segment needs a batch [B, T, ...]; got shape {tuple(x.shape)}")
    batch, steps = x.shape[:2]
    if steps <= length:
        return x
    return crop_segments(x, length, random_offsets(batch, steps - length, x.device, generator))
