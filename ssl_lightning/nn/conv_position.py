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

    With `positions`, the same conv runs on a sparse sequence (visible-only encoding): `x[B, K, D]` are
    the only nonzero tokens of a length-`length` sequence, at `positions[B, K]`, and the output is
    the conv at those positions only, `[B, K, D]`, equal to the dense conv of the zero-filled sequence
    there up to float rounding, for about (K / N)^2 of its multiply-adds (see `sparse_conv`).

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

    def forward(self, x: Tensor, positions: Tensor | None = None, length: int | None = None) -> Tensor:
        """`x[B, N, D]` -> `[B, N, D]`; with `positions`, `x[B, K, D]` -> `[B, K, D]` at those positions.

        Args:
            x: the sequence `[B, N, D]`, or with `positions` its only nonzero tokens `[B, K, D]`.
            positions: int64 `[B, K]`, distinct indices in `[0, length)` of the tokens of `x`.
            length: N, the length of the sequence that `positions` index (needed with `positions`).
        """
        weight = torch._weight_norm(self.weight_v, self.weight_g, 2)
        if positions is None:
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
        if length is None or positions.shape != x.shape[:2] or positions.dtype != torch.long:
            raise ValueError(
                f"the sparse conv needs int64 positions [B, K] = {tuple(x.shape[:2])} of the tokens x and "
                f"the sequence length; got {positions.dtype} positions {tuple(positions.shape)}, "
                f"length={length}"
            )
        return F.gelu(self.sparse_conv(x, weight, positions, length))

    def sparse_conv(self, x: Tensor, weight: Tensor, positions: Tensor, length: int) -> Tensor:
        """The conv (before GELU) at `positions[B, K]` of a sequence that is zero but for `x[B, K, D]` there.

        Only the (output, input) pairs of tokens within reach of each other are multiplied, tap by tap:
        the pairs are sorted by tap (offset `input - output + kernel_size // 2`) into a table
        `[kernel_size, capacity]` (capacity: the most pairs of any tap, read on the host: one device
        sync, and a graph break under `torch.compile`), each tap's inputs go through that tap's
        grouped weight in one batched matmul over (group, tap), and the products are summed into
        their outputs (`index_add`). The centre tap pairs every token with itself and runs as one
        dense product. About (K / N)^2 of the dense conv's multiply-adds and no `[B, K, kernel_size,
        D]` window tensor (gathering full windows instead was 3x slower on CPU); the same sum as the
        conv's up to float rounding.
        """
        taps, groups = self.kernel_size, self.groups
        batch, count = positions.shape
        tokens = F.pad(rearrange(x, "b k (g c) -> g (b k) c", g=groups), (0, 0, 0, 1))  # row B K: zeros
        sources, targets = self.tap_pairs(positions, length)
        # weight [(g o), c, t] -> [t, (g o c)] as a plain 2-D transpose (the fast copy), then [o, c] blocks
        per_tap = rearrange(
            weight.reshape(-1, taps).t().contiguous(), "t (g o c) -> g t o c", g=groups, c=weight.shape[1]
        )
        inputs = rearrange(tokens.index_select(1, sources.flatten()), "g (t p) c -> (g t) p c", t=taps)
        products = torch.bmm(inputs, rearrange(per_tap, "g t o c -> (g t) c o"))
        bias = rearrange(self.bias, "(g o) -> g 1 o", g=groups)
        centre = torch.baddbmm(bias, tokens, rearrange(per_tap[:, taps // 2], "g o c -> g c o"))
        y = centre.index_add(1, targets.flatten(), rearrange(products, "(g t) p o -> g (t p) o", g=groups))
        return rearrange(y[:, :-1], "g (b k) o -> b k (g o)", b=batch, k=count)

    def tap_pairs(self, positions: Tensor, length: int) -> tuple[Tensor, Tensor]:
        """Input and output rows of the token pairs of each tap but the centre one: two int64
        `[kernel_size, capacity]` tables (row `t`: the pairs at offset `t - kernel_size // 2`).

        Rows index the tokens flattened over the batch (`b * K + k`); `B * K` (one past the last, a zero
        row) fills the unused entries of a tap with fewer pairs than `capacity`.
        """
        taps = self.kernel_size
        rows = rearrange(self.window_rows(positions, length), "b k t -> t (b k)")
        empty = rows.shape[1]
        paired = rows != empty
        paired[taps // 2] = False
        capacity = int(paired.sum(dim=1).max())
        slot = torch.where(paired, paired.cumsum(dim=1) - 1, capacity)
        outputs = torch.arange(empty, device=rows.device).expand(taps, -1)
        sources, targets = (
            rows.new_full((taps, capacity + 1), empty).scatter_(1, slot, index)[:, :capacity]
            for index in (rows, outputs)
        )
        return sources, targets

    def window_rows(self, positions: Tensor, length: int) -> Tensor:
        """Row of the token under each tap of each output: `positions[B, K]` -> int64 `[B, K, kernel_size]`.

        Rows index the tokens flattened over the batch (`b * K + k`); `B * K` (one past the last)
        stands for a position that holds no token (masked, or outside the sequence).
        """
        batch, count = positions.shape
        half = self.kernel_size // 2
        empty = batch * count
        slots = positions.new_full((batch, length + self.kernel_size), empty)
        rows = torch.arange(empty, device=positions.device).view(batch, count)
        slots.scatter_(1, positions + half, rows)
        taps = positions[..., None] + torch.arange(self.kernel_size, device=positions.device)
        return slots.gather(1, rearrange(taps, "b k t -> b (k t)")).view(batch, count, self.kernel_size)

    def extra_repr(self) -> str:
        return f"dim={self.weight_v.shape[0]}, kernel_size={self.kernel_size}, groups={self.groups}"
