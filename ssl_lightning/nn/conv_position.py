"""Convolutional positional embedding (wav2vec 2.0, BEATs): a wide grouped conv over the sequence."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class ConvPositionalEmbedding(nn.Module):
    """`x[B, N, D] -> GELU(conv1d(x))[B, N, D]`, to be added to `x` (the caller adds it).

    A grouped Conv1d over the sequence axis with kernel `kernel_size`, "same" padding (for an even
    kernel the last output step is dropped) and weight normalisation over every tap
    (`weight = weight_v * weight_g / ||weight_v||`, norm over the channel axes, one `weight_g` per tap,
    the `dim=2` convention of wav2vec 2.0). Parameter names match the official checkpoints.

    Args:
        dim: channels D (in = out).
        kernel_size: taps of the conv (128 in BEATs).
        groups: conv groups (16 in BEATs); must divide `dim`.
    """

    def __init__(self, dim: int, kernel_size: int = 128, groups: int = 16) -> None:
        super().__init__()
        if dim % groups:
            raise ValueError(f"groups={groups} must divide the channel count dim={dim}")
        self.kernel_size = kernel_size
        self.groups = groups
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(dim, dim // groups, kernel_size))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """wav2vec 2.0 init: v ~ N(0, sqrt(4 / (kernel_size * dim))), g = per-tap norm of v, bias 0."""
        dim = self.weight_v.shape[0]
        nn.init.normal_(self.weight_v, std=math.sqrt(4.0 / (self.kernel_size * dim)))
        with torch.no_grad():
            self.weight_g.copy_(torch.norm_except_dim(self.weight_v, 2, 2))
        nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """`[B, N, D]` -> `[B, N, D]`."""
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2)
        y = F.conv1d(
            rearrange(x, "b n d -> b d n"),
            weight,
            self.bias,
            padding=self.kernel_size // 2,
            groups=self.groups,
        )
        if self.kernel_size % 2 == 0:
            y = y[..., :-1]
        return F.gelu(rearrange(y, "b d n -> b n d"))

    def extra_repr(self) -> str:
        return f"dim={self.weight_v.shape[0]}, kernel_size={self.kernel_size}, groups={self.groups}"
