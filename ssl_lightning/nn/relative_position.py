"""Bucketed relative position bias (T5 buckets, as used by WavLM and BEATs).

A learned table `weight[num_buckets, num_heads]` holds one scalar bias per head and bucket. The
relative position `key - query` maps to a bucket: half the buckets for keys before (or at) the query,
half for keys after it; within each half, small distances get one bucket each and larger distances
share logarithmically wider buckets up to `max_distance`, beyond which the last bucket is used.
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import Tensor, nn


def relative_position_bucket(relative_position: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """Bidirectional bucket index of each `key - query` offset: int64 tensor of the same shape.

    With `half = num_buckets // 2` and `exact = half // 2`: offsets r <= 0 use buckets [0, half), r > 0
    use [half, num_buckets). A distance |r| < exact is its own bucket; otherwise the bucket is
    `exact + trunc(ln(|r| / exact) / ln(max_distance / exact) * (half - exact))`, capped at half - 1.
    For num_buckets=320, max_distance=800: r=1 -> 161, r=100 -> 247, r=-81 -> 80, r=-800 -> 159.
    """
    half = num_buckets // 2
    exact = half // 2
    buckets = (relative_position > 0).long() * half
    distance = relative_position.abs()
    log_ratio = torch.log(distance.clamp(min=exact).float() / exact) / math.log(max_distance / exact)
    large = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return buckets + torch.where(distance < exact, distance, large)


class RelativePositionBias(nn.Module):
    """Learned per-head bias of the bucketed relative position: positions `[N]` or `[B, N]` -> bias.

    The positions are the tokens' indices in the full sequence, so a subset of tokens (e.g. only the
    visible patches of a masked sequence) gets the biases of its true offsets.

    Args:
        num_heads: attention heads H (one bias per head and bucket).
        num_buckets: total buckets over both directions (even).
        max_distance: distance at which the logarithmic buckets saturate (> num_buckets // 4).
    """

    def __init__(self, num_heads: int, num_buckets: int = 320, max_distance: int = 800) -> None:
        super().__init__()
        if num_buckets < 4 or num_buckets % 2:
            raise ValueError(f"num_buckets must be an even number >= 4, got {num_buckets}")
        if max_distance <= num_buckets // 4:
            raise ValueError(
                f"max_distance must exceed num_buckets // 4 = {num_buckets // 4} (the last exact distance); "
                f"got max_distance={max_distance}"
            )
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.weight = nn.Parameter(torch.empty(num_buckets, num_heads))
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, positions: Tensor) -> Tensor:
        """Positions `[N]` or `[B, N]` (int) -> bias `[1 or B, H, N, N]` (head h, query i, key j)."""
        if positions.dim() == 1:
            positions = positions[None]
        relative = rearrange(positions, "b j -> b 1 j") - rearrange(positions, "b i -> b i 1")
        buckets = relative_position_bucket(relative, self.num_buckets, self.max_distance)
        return rearrange(self.weight[buckets], "b i j h -> b h i j")

    def extra_repr(self) -> str:
        heads = self.weight.shape[1]
        return f"num_buckets={self.num_buckets}, num_heads={heads}, max_distance={self.max_distance}"
