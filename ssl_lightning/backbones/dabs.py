"""The domain-agnostic Transformer of DABS 1.0 (Tamkin et al., 2021; `alextamkin/dabs` at 7ee9a71,
`src/models/transformer.py` and `embedding_modules.py`, a ViT after lucidrains' vit-pytorch).

A DABS batch is a dict holding each input under its `InputSpec.name` (`ssl_lightning.nn.input_specs`).
One embedding module per spec maps its input to tokens `[B, n_i, dim]`:
- tokens: an embedding table `[vocab_size, dim]` (one token per id);
- 1d `[B, T, C]`: segments of `patch_size` steps flattened as (step, channel) -> Linear to `dim`;
- 2d `[B, C, H, W]`: p x p patches in row-major order, each flattened as (row p1, column p2, channel c)
  -> Linear to `dim`.
The modules' tokens are concatenated in spec order (N in all), a learned CLS token is prepended, learned
positions `[N + 1, dim]` are added (both `randn` initialised, as the official code), then embedding
dropout and pre-norm blocks. There is no final norm: the official model's only LayerNorm after the blocks
is the first layer of its 128-d head (LN -> Linear), which lives in the methods
(`ssl_lightning.methods.dabs`). Parameter names are this library's, not the official state-dict keys.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.nn.input_specs import InputSpec
from ssl_lightning.nn.pooling import masked_mean

FLATTEN = {"1d": "b (n p1) c -> b n (p1 c)", "2d": "b c (h p1) (w p2) -> b (h w) (p1 p2 c)"}
"""How a 1d segment and a 2d patch become one vector (the official einops patterns)."""


class InputEmbedding(nn.Module):
    """The embedding module of one spec: its input -> tokens `[B, spec.num_tokens, dim]`."""

    def __init__(self, spec: InputSpec, dim: int) -> None:
        super().__init__()
        self.spec = spec
        if spec.kind == "tokens":
            self.embed: nn.Module = nn.Embedding(spec.vocab_size, dim)
        else:
            patch_area = spec.patch_size ** (1 if spec.kind == "1d" else 2)
            self.embed = nn.Linear(spec.in_channels * patch_area, dim)
            self.patch_axes = {"p1": spec.patch_size} | ({"p2": spec.patch_size} if spec.kind == "2d" else {})

    def expected_shape(self) -> tuple[int, ...]:
        """The input's shape without the batch axis."""
        spec = self.spec
        if spec.kind == "tokens":
            return (spec.size,)
        if spec.kind == "1d":
            return (spec.size, spec.in_channels)
        return (spec.in_channels, *spec.size)

    def forward(self, x: Tensor) -> Tensor:
        spec, shape = self.spec, self.expected_shape()
        if tuple(x.shape[1:]) != shape or (spec.kind == "tokens") == x.is_floating_point():
            kind = "int64 token ids" if spec.kind == "tokens" else "a float tensor"
            raise ValueError(
                f"DABS input {spec.name!r} ({spec.kind}) must be {kind} of shape "
                f"[B, {', '.join(map(str, shape))}] as its InputSpec says; "
                f"got {x.dtype} of shape {tuple(x.shape)}"
            )
        if spec.kind == "tokens":
            return self.embed(x)
        return self.embed(rearrange(x, FLATTEN[spec.kind], **self.patch_axes))


class Attention(nn.Module):
    """Multi-head self-attention `[B, N, dim] -> [B, N, dim]`: qkv without bias into `heads * dim_head`,
    softmax(q k^T / sqrt(dim_head)) v, then an output Linear and dropout (the official code drops the
    projection only when heads == 1 and dim_head == dim)."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        project = not (heads == 1 and dim_head == dim)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = (
            rearrange(t, "b n (h d) -> b h n d", h=self.heads) for t in self.to_qkv(x).chunk(3, dim=-1)
        )
        return self.to_out(rearrange(F.scaled_dot_product_attention(q, k, v), "b h n d -> b n (h d)"))


class Block(nn.Module):
    """Pre-norm block: `x + Attn(LN(x))`, then `x + FFN(LN(x))`; FFN = Linear-GELU-Dropout-Linear-Dropout."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, mlp_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(mlp_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.attn_norm(x))
        return x + self.ffn(self.ffn_norm(x))


class DabsTransformer(nn.Module):
    """DABS's domain-agnostic Transformer over the inputs of `specs` (defaults: the official
    `conf/model/transformer.yaml`).

    Args:
        specs: the domain's inputs, in the order their tokens are concatenated.
        dim: token width (`embed_dim`).
        depth, heads, dim_head, mlp_dim: blocks, attention heads, width per head, FFN hidden size.
        dropout: dropout in the attention output and the FFN.
        emb_dropout: dropout on the tokens after CLS and positions are added.
        out_dim: width of the methods' projection head (kept here, with the model, as DABS configures it).
    """

    takes_batch = True
    """The encoder reads its inputs from the batch dict by spec name (`SSLMethod.encode` passes it whole)."""

    def __init__(
        self,
        specs: list[InputSpec],
        dim: int = 256,
        depth: int = 12,
        heads: int = 8,
        dim_head: int = 64,
        mlp_dim: int = 512,
        dropout: float = 0.1,
        emb_dropout: float = 0.1,
        out_dim: int = 128,
    ) -> None:
        super().__init__()
        names = [spec.name for spec in specs]
        if not specs or len(set(names)) != len(names):
            raise ValueError(f"DabsTransformer needs one or more InputSpecs with distinct names, got {names}")
        self.specs = list(specs)
        self.embed_dim = dim
        self.out_dim = out_dim
        self.num_tokens = sum(spec.num_tokens for spec in specs)
        self.embed_modules = nn.ModuleList(InputEmbedding(spec, dim) for spec in specs)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, self.num_tokens + 1, dim))
        self.dropout = nn.Dropout(emb_dropout)
        self.blocks = nn.ModuleList(Block(dim, heads, dim_head, mlp_dim, dropout) for _ in range(depth))

    def embed_inputs(self, batch: dict[str, Tensor]) -> Tensor:
        """The embedding modules' tokens of every input, concatenated in spec order: `[B, N, dim]`."""
        missing = [spec.name for spec in self.specs if spec.name not in batch]
        if missing:
            raise KeyError(
                f"DABS batch lacks the inputs {missing} of the encoder's specs (keys: {sorted(batch)})"
            )
        return torch.cat([module(batch[module.spec.name]) for module in self.embed_modules], dim=1)

    def encode_embeddings(self, tokens: Tensor) -> Tensor:
        """`tokens[B, N, dim]` -> `[B, N + 1, dim]`: CLS prepended, positions added, dropout, blocks."""
        if tokens.shape[1:] != (self.num_tokens, self.embed_dim):
            raise ValueError(
                f"encode_embeddings expects [B, {self.num_tokens}, {self.embed_dim}] tokens (embed_inputs' "
                f"output), got {tuple(tokens.shape)}"
            )
        x = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.pos_embedding
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, None]:
        """`(features[B, N + 1, dim], None)`: every token of the last block, CLS first; no padding."""
        return self.encode_embeddings(self.embed_inputs(batch)), None

    def pool(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """DABS's pooled feature ("prehead"): the mean over all tokens, CLS included -> `[B, dim]`."""
        return masked_mean(features, padding_mask)
