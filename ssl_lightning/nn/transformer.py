"""Transformer encoder of BEATs/WavLM: conv positional embedding, gated relative position bias,
post-LN with DeepNorm residual scaling (Wang et al., 2022) or pre-LN.

Module and parameter names follow the official BEATs checkpoints (`self_attn`, `self_attn_layer_norm`,
`fc1`, `fc2`, `final_layer_norm`, `pos_conv`, `layer_norm`), so converting a state dict only renames
a few keys (see `ssl_lightning.backbones.beats`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.nn.attention import MultiheadSelfAttention
from ssl_lightning.nn.conv_position import ConvPositionalEmbedding
from ssl_lightning.nn.distributed import world_size
from ssl_lightning.nn.relative_position import RelativePositionBias

ACTIVATIONS = ("relu", "gelu", "gelu_fast", "gelu_accurate", "tanh", "linear", "glu")


def _gelu_float32(x: Tensor) -> Tensor:
    """Exact (erf) GELU computed in float32 and cast back, as BEATs does for its FFN."""
    return F.gelu(x.float()).type_as(x)


def _gelu_tanh(x: Tensor) -> Tensor:
    return F.gelu(x, approximate="tanh")


def _identity(x: Tensor) -> Tensor:
    return x


def _swish_gated(x: Tensor) -> Tensor:
    """GLU with a swish gate: `[..., 2F]` split as `[a | b]` -> `a * swish(b)` `[..., F]`."""
    a, b = x.chunk(2, dim=-1)
    return a * F.silu(b)


def activation_fn(name: str) -> Callable[[Tensor], Tensor]:
    """The FFN activation called `name` in BEATs/fairseq configs (`glu` halves fc1's doubled output)."""
    functions = {
        "relu": F.relu,
        "gelu": _gelu_float32,
        "gelu_fast": _gelu_tanh,
        "gelu_accurate": _gelu_tanh,
        "tanh": torch.tanh,
        "linear": _identity,
        "glu": _swish_gated,
    }
    if name not in functions:
        raise ValueError(f"activation_fn={name!r} is not supported; choose one of {ACTIVATIONS}")
    return functions[name]


class _ScaleGradient(torch.autograd.Function):
    """Identity in the forward pass; multiplies the gradient by `scale` in the backward pass."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def scale_gradient(x: Tensor, scale: float) -> Tensor:
    """`x` unchanged, with its gradient multiplied by `scale` (layer-wise gradient decay)."""
    return _ScaleGradient.apply(x, scale)


def skip_in_graph(x: Tensor, module: nn.Module) -> Tensor:
    """`x` unchanged, with every trainable parameter of `module` added at weight zero: a skipped layer
    (layer dropout) stays in the autograd graph, so its parameters get a zero gradient, not none, and
    DDP, which waits for a gradient of every parameter each step, runs without find_unused_parameters
    (the average over ranks is the one find_unused_parameters gives for a layer some rank ran)."""
    return x + 0.0 * sum(p.sum() for p in module.parameters() if p.requires_grad)


class TransformerLayer(nn.Module):
    """One encoder layer on `x[B, N, D]`.

    Post-LN (`layer_norm_first=False`): `x = LN(alpha x + Drop(Attn(x)))`, then
    `x = LN(alpha x + Drop(FFN(x)))`, with DeepNorm's `alpha = (2 * num_layers) ** 0.25` (1 without
    DeepNorm). Pre-LN: `x = x + Drop(Attn(LN(x)))`, `x = x + Drop(FFN(LN(x)))`.
    FFN = `fc2(Drop_act(act(fc1(x))))`; with `glu`, fc1 is D -> 2F.
    """

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        activation: str = "gelu",
        layer_norm_first: bool = False,
        residual_scale: float = 1.0,
        gated_relative_position: bool = False,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.activation = activation_fn(activation)
        self.dropout = dropout
        self.activation_dropout = activation_dropout
        self.layer_norm_first = layer_norm_first
        self.residual_scale = residual_scale
        self.self_attn = MultiheadSelfAttention(
            dim, num_heads, attention_dropout, gated_relative_position, fused_attn=fused_attn
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 2 * ffn_dim if activation == "glu" else ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)

    def feed_forward(self, x: Tensor) -> Tensor:
        """`[B, N, D]` -> `[B, N, D]`."""
        hidden = F.dropout(self.activation(self.fc1(x)), self.activation_dropout, self.training)
        return F.dropout(self.fc2(hidden), self.dropout, self.training)

    def forward(
        self, x: Tensor, key_padding_mask: Tensor | None = None, position_bias: Tensor | None = None
    ) -> Tensor:
        """`x[B, N, D]`, bool `key_padding_mask[B, N]`, `position_bias[1 or B, H, N, N]` -> `[B, N, D]`."""
        if self.layer_norm_first:
            attended = self.self_attn(self.self_attn_layer_norm(x), key_padding_mask, position_bias)
            x = x + F.dropout(attended, self.dropout, self.training)
            return x + self.feed_forward(self.final_layer_norm(x))
        attended = self.self_attn(x, key_padding_mask, position_bias)
        x = self.self_attn_layer_norm(
            self.residual_scale * x + F.dropout(attended, self.dropout, self.training)
        )
        return self.final_layer_norm(self.residual_scale * x + self.feed_forward(x))


class TransformerEncoder(nn.Module):
    """BEATs Transformer: `x[B, N, D]` (+ padding mask) -> `[B, N, D]`, or only the kept tokens.

    1. `keep_index` (optional) gathers the kept tokens, which keep their positions in the full
       sequence: the conv below sees them in place, and the relative position bias uses their indices;
    2. padded tokens are zeroed, then `x = x + ConvPositionalEmbedding(x)`; with `keep_index` the conv
       runs on the sequence whose tokens outside `keep_index` are zero, and only at the kept
       positions (`ConvPositionalEmbedding(x, positions=keep_index)`): the same numbers as the
       dense conv of that zero-filled sequence there (up to float rounding), multiplying only pairs
       of kept tokens within the kernel's reach;
    3. post-LN models apply `layer_norm` here (pre-LN models at the end), then dropout;
    4. the layers, with one relative position bias shared by all layers (each layer gates it).

    Args:
        dim, num_layers, num_heads, ffn_dim: width D, depth, heads H, FFN hidden size.
        conv_pos, conv_pos_groups: kernel and groups of the conv positional embedding.
        relative_position_embedding: add the bucketed relative position bias.
        num_buckets, max_distance: relative position buckets (both directions) and saturation distance.
        gated_relative_position: gate the bias per query (`gru_rel_pos`).
        layer_norm_first: pre-LN layers (incompatible with `deep_norm`).
        deep_norm: DeepNorm residual scale `(2 * num_layers) ** 0.25`, init gains `(8 * num_layers) ** -0.25`.
        dropout, attention_dropout, activation_dropout: dropout probabilities (training only).
        layerdrop: probability of skipping each layer in training (drawn per layer and step from the
            global RNG). A skipped layer gets no gradient (as in the official code); under DDP a zero
            one (`skip_in_graph`), which DDP's averaging treats as the official find_unused_parameters.
        layer_wise_gradient_decay_ratio: gradients are multiplied by this before every layer, so a
            parameter below k layers receives ratio**k of its gradient (forward values unchanged).
        activation: FFN activation name (`activation_fn`).
        fused_attn: use `F.scaled_dot_product_attention`.
    """

    def __init__(
        self,
        dim: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        ffn_dim: int = 3072,
        conv_pos: int = 128,
        conv_pos_groups: int = 16,
        relative_position_embedding: bool = True,
        num_buckets: int = 320,
        max_distance: int = 800,
        gated_relative_position: bool = True,
        layer_norm_first: bool = False,
        deep_norm: bool = True,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation_dropout: float = 0.0,
        layerdrop: float = 0.0,
        layer_wise_gradient_decay_ratio: float = 1.0,
        activation: str = "gelu",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if deep_norm and layer_norm_first:
            raise ValueError(
                "deep_norm=True needs post-LN layers; set layer_norm_first=False (or deep_norm=False)"
            )
        self.dropout = dropout
        self.layerdrop = layerdrop
        self.layer_norm_first = layer_norm_first
        self.layer_wise_gradient_decay_ratio = layer_wise_gradient_decay_ratio
        self.pos_conv = ConvPositionalEmbedding(dim, conv_pos, conv_pos_groups)
        self.relative_position = (
            RelativePositionBias(num_heads, num_buckets, max_distance)
            if relative_position_embedding
            else None
        )
        self.layers = nn.ModuleList(
            TransformerLayer(
                dim,
                ffn_dim,
                num_heads,
                dropout=dropout,
                attention_dropout=attention_dropout,
                activation_dropout=activation_dropout,
                activation=activation,
                layer_norm_first=layer_norm_first,
                residual_scale=(2 * num_layers) ** 0.25 if deep_norm else 1.0,
                gated_relative_position=gated_relative_position,
                fused_attn=fused_attn,
            )
            for _ in range(num_layers)
        )
        self.layer_norm = nn.LayerNorm(dim)
        self._init_weights(deep_norm)

    def _init_weights(self, deep_norm: bool) -> None:
        """BERT init (linears N(0, 0.02), zero biases); with DeepNorm, Xavier-normal with gain 1 for q/k
        and `beta = (8 * num_layers) ** -0.25` for v, out, fc1, fc2 (DeepNet's encoder constants)."""
        for module in self.layers.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        if not deep_norm:
            return
        beta = (8 * len(self.layers)) ** -0.25
        for layer in self.layers:
            attention = layer.self_attn
            for linear, gain in (
                (attention.q_proj, 1.0),
                (attention.k_proj, 1.0),
                (attention.v_proj, beta),
                (attention.out_proj, beta),
                (layer.fc1, beta),
                (layer.fc2, beta),
            ):
                nn.init.xavier_normal_(linear.weight, gain=gain)

    def forward(
        self, x: Tensor, padding_mask: Tensor | None = None, keep_index: Tensor | None = None
    ) -> Tensor:
        """Encode `x[B, N, D]`.

        Args:
            x: token embeddings `[B, N, D]`.
            padding_mask: bool `[B, N]`, True at padding: zeroed before the conv and never attended to
                (an item whose tokens are all padding attends to all of them rather than giving NaN).
            keep_index: int64 `[B, K]` indices of the tokens to encode (e.g. the visible patches of
                masked audio modelling); all N tokens when None.
        Returns:
            `[B, N, D]`, or `[B, K, D]` for the kept tokens in `keep_index` order.
        """
        length = x.shape[1]
        positions = torch.arange(length, device=x.device)
        if keep_index is not None:
            x = x.gather(1, keep_index[..., None].expand(-1, -1, x.shape[-1]))
            padding_mask = None if padding_mask is None else padding_mask.gather(1, keep_index)
            positions = keep_index
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x, keep_index, length)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, self.dropout, self.training)
        position_bias = None if self.relative_position is None else self.relative_position(positions)
        if padding_mask is not None:
            padding_mask = padding_mask & ~padding_mask.all(dim=1, keepdim=True)
        for layer in self.layers:
            if self.layer_wise_gradient_decay_ratio != 1.0:
                x = scale_gradient(x, self.layer_wise_gradient_decay_ratio)
            if self.training and self.layerdrop > 0.0 and torch.rand(()) < self.layerdrop:
                if world_size() > 1:  # DDP waits for a gradient of every parameter, zero will do
                    x = skip_in_graph(x, layer)
                continue  # one process: no gradient at all, so the optimizer leaves the layer alone
            x = layer(x, padding_mask, position_bias)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x
