"""Multi-head self-attention with an optional gated relative position bias (WavLM, BEATs).

The gate (Chi et al., 2022, as implemented by WavLM/BEATs) scales the relative position bias of
each query by `m = g_a * (g_b * a_h - 1) + 2`, where `g_a, g_b = sigmoid(sum of 4 of 8 outputs of
grep_linear(q_head))` come from the head's projected query (bias included) and `a_h = grep_a[h]` is a
learned per-head scalar (init 1). The bias can be scaled up but never gated to zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# The official code computes the scores as ((q / 32) k^T - row max) * 32 so that fp16 stays in range.
_STABLE_SOFTMAX_ALPHA = 32.0


class MultiheadSelfAttention(nn.Module):
    """Self-attention `x[B, N, D] -> [B, N, D]` with additive relative position bias and key padding.

    `fused_attn=True` runs `F.scaled_dot_product_attention` (the bias and the padding go in as one
    additive float mask). `fused_attn=False` follows the official BEATs op order (q scaled by
    1/(32 sqrt(hd)), row max subtracted, x32, -inf at padded keys, then the bias, softmax); the two
    agree to float32 rounding (about 1e-6 on the fixtures). Parameter names match the official
    checkpoints (`q_proj`, `k_proj`, `v_proj`, `out_proj`, `grep_linear`, `grep_a`).

    Args:
        dim: model width D.
        num_heads: heads H; must divide `dim`.
        dropout: dropout on the attention probabilities (training only).
        gated_relative_position: gate the position bias per query (`gru_rel_pos` in BEATs configs).
        fused_attn: use `F.scaled_dot_product_attention`.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        dropout: float = 0.0,
        gated_relative_position: bool = False,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide the model width dim={dim}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.dropout = dropout
        self.fused_attn = fused_attn
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.gated_relative_position = gated_relative_position
        if gated_relative_position:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, num_heads, 1, 1))

    def gate(self, q: Tensor) -> Tensor:
        """Per-query multiplier of the position bias: `q[B, H, N, hd]` -> `[B, H, N, 1]`."""
        logits = rearrange(self.grep_linear(q), "b h n (g k) -> b h n g k", g=2).sum(dim=-1)
        gate_a, gate_b = torch.sigmoid(logits).chunk(2, dim=-1)
        return gate_a * (gate_b * self.grep_a - 1.0) + 2.0

    def forward(
        self, x: Tensor, key_padding_mask: Tensor | None = None, position_bias: Tensor | None = None
    ) -> Tensor:
        """Attend over `x[B, N, D]`.

        Args:
            x: token features `[B, N, D]`.
            key_padding_mask: bool `[B, N]`, True for keys nobody may attend to.
            position_bias: additive scores `[1 or B, H, N, N]` (query i, key j), gated here when
                `gated_relative_position`.
        Returns:
            `[B, N, D]`.
        """
        q, k, v = (
            rearrange(proj(x), "b n (h d) -> b h n d", h=self.num_heads)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )
        if position_bias is not None and self.gated_relative_position:
            position_bias = self.gate(q) * position_bias
        dropout = self.dropout if self.training else 0.0
        if self.fused_attn:
            out = self._fused(q, k, v, key_padding_mask, position_bias, dropout)
        else:
            out = self._stable_softmax(q, k, v, key_padding_mask, position_bias, dropout)
        return self.out_proj(rearrange(out, "b h n d -> b n (h d)"))

    def _fused(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Tensor | None,
        position_bias: Tensor | None,
        dropout: float,
    ) -> Tensor:
        attn_mask = None if position_bias is None else position_bias.to(q.dtype)
        if key_padding_mask is not None:
            padded = rearrange(key_padding_mask, "b j -> b 1 1 j")
            zero = q.new_zeros(()) if attn_mask is None else attn_mask
            attn_mask = torch.where(padded, float("-inf"), zero)
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=dropout, scale=self.scale
        )

    def _stable_softmax(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Tensor | None,
        position_bias: Tensor | None,
        dropout: float,
    ) -> Tensor:
        scores = (q * self.scale / _STABLE_SOFTMAX_ALPHA) @ k.transpose(-2, -1)
        scores = (scores - scores.amax(dim=-1, keepdim=True)) * _STABLE_SOFTMAX_ALPHA
        if key_padding_mask is not None:
            scores = scores.masked_fill(rearrange(key_padding_mask, "b j -> b 1 1 j"), float("-inf"))
        if position_bias is not None:
            scores = scores + position_bias
        probs = F.dropout(scores.softmax(dim=-1), p=dropout, training=dropout > 0.0)
        return probs @ v
