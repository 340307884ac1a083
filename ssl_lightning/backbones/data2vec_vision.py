"""data2vec vision encoder: the BEiT ViT of transformers' `Data2VecVisionModel`, with the data2vec hooks.

An image `[B, C, H, W]` (`image_size` = H = W, or the pair (H, W)) becomes `N = (H // p)(W // p)` patch
tokens (`Conv2d(k=p, s=p)`, row-major over the `(H // p, W // p)` grid), a CLS token is prepended (no absolute
positions unless configured) and pre-LN blocks with layer scale run
`h += drop_path(lambda_1 * Attn(LN(h))); h += drop_path(lambda_2 * MLP(LN(h)))`.
Attention adds BEiT's relative position bias: a table `[(2 rows - 1)(2 cols - 1) + 3, heads]` looked up by
`relative_position_index` (3 extra rows for CLS -> patch, patch -> CLS, CLS -> CLS), one table per layer
(the fine-tuned checkpoints' layout) and/or one shared by all layers (`encoder.relative_position_bias`, the
SSL-pretrained checkpoints' layout). Module names are transformers', so `state_dict()` is the transformers
state dict of `Data2VecVisionModel(config, add_pooling_layer=True)`.

data2vec hooks: `embed_tokens` is the patch embedding (after the optional pixel normalisation);
`encode_tokens` replaces masked patches by `embeddings.mask_token` (data2vec 1.0, BEiT's
`bool_masked_pos` rule) or encodes only the kept patches (data2vec 2.0; the relative position bias is
gathered at the kept patches' true grid positions), prepends CLS and runs the blocks.

Non-square grids and transformers 5.x: `Data2VecVisionRelativePositionBias.forward` reshapes the table of a
(rows, cols) window as (2 cols - 1, 2 rows - 1) and resizes it bilinearly to (2 rows - 1, 2 cols - 1) at every
call: the identity for a square grid, a resampled table otherwise (BEiT's own code looks the table up as this
encoder does). `to_huggingface` therefore declares a non-square grid transposed (`image_size` = (W, H), so
that transformers' reshape is BEiT's layout and its resize the identity) and records (H, W) under
`ssl_lightning_image_size`, which `from_huggingface` reads back.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from timm.layers import DropPath
from torch import Tensor, nn

from ssl_lightning.backbones.data2vec_common import (
    Data2VecEncoding,
    HuggingFaceEncoder,
    Intermediate,
    check_activations,
    check_divide_hidden_size,
    check_probabilities,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_POSITIVE_INT_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "patch_size",
    "num_channels",
)
_PROBABILITY_FIELDS = ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate")
# config.json key of a non-square image size (H, W), whose `image_size` to_huggingface writes as (W, H).
HF_IMAGE_SIZE_KEY = "ssl_lightning_image_size"


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _height_width(image_size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """`(height, width)` of an `image_size` given as one side or a pair (transformers accepts both)."""
    return (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)


@dataclass
class Data2VecVisionConfig:
    """transformers' `Data2VecVisionConfig` keys (names and defaults) that the encoder uses, plus the pixel
    statistics of the input.

    `image_size`: the side of square images, or `(height, width)` (e.g. a spectrogram's (frames, mel bins));
    the patch grid is `(height // patch_size, width // patch_size)` (rows, cols).

    `pixel_mean` / `pixel_std` (ours; transformers keeps them in the image processor): when set, images
    come in [0, 1] and `embed_tokens` normalises them as `(x - mean) / std` per channel, so the [0, 1] image
    datamodules feed the encoder directly; None means the input is already normalised (transformers'
    `pixel_values`). Both or neither.
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    image_size: int | tuple[int, int] = 224
    patch_size: int = 16
    num_channels: int = 3
    use_mask_token: bool = False
    use_absolute_position_embeddings: bool = False
    use_relative_position_bias: bool = False
    use_shared_relative_position_bias: bool = False
    layer_scale_init_value: float = 0.1
    drop_path_rate: float = 0.1
    use_mean_pooling: bool = True
    pixel_mean: tuple[float, float, float] | None = None
    pixel_std: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in _POSITIVE_INT_FIELDS:
            value = getattr(self, field)
            if not _is_positive_int(value):
                raise ValueError(f"{name}.{field} must be a positive int, got {value!r}")
        if isinstance(self.image_size, list):  # JSON / YAML
            self.image_size = tuple(self.image_size)
        size = self.image_size
        if not (
            _is_positive_int(size)
            or (isinstance(size, tuple) and len(size) == 2 and all(_is_positive_int(side) for side in size))
        ):
            raise ValueError(
                f"{name}.image_size must be a positive int or a pair (height, width) of them, got {size!r}"
            )
        check_divide_hidden_size(self, "num_attention_heads")
        if self.patch_size > min(self.image_shape):
            raise ValueError(f"{name}.patch_size={self.patch_size} exceeds image_size={self.image_size}")
        check_activations(self, "hidden_act")
        check_probabilities(self, *_PROBABILITY_FIELDS, one_allowed=False)
        if (self.pixel_mean is None) != (self.pixel_std is None):
            raise ValueError(
                f"{name}: set both pixel_mean and pixel_std (images in [0, 1]) or neither (normalised "
                "input); "
                f"got pixel_mean={self.pixel_mean}, pixel_std={self.pixel_std}"
            )
        if self.pixel_mean is not None:
            self.pixel_mean, self.pixel_std = tuple(self.pixel_mean), tuple(self.pixel_std)
            if len(self.pixel_mean) != self.num_channels or len(self.pixel_std) != self.num_channels:
                raise ValueError(
                    f"{name}: pixel_mean {self.pixel_mean} and pixel_std {self.pixel_std} need one value per "
                    f"channel (num_channels={self.num_channels})"
                )
            if min(self.pixel_std) <= 0:
                raise ValueError(f"{name}.pixel_std must be positive, got {self.pixel_std}")

    @property
    def image_shape(self) -> tuple[int, int]:
        """`(height, width)` of the input images."""
        return _height_width(self.image_size)

    @classmethod
    def base(cls) -> Data2VecVisionConfig:
        """ViT-B/16 (12 x 768, 12 heads, FFN 3072) in the SSL-pretraining layout of
        `facebook/data2vec-vision-base`: a mask token, one shared relative position bias, a final
        LayerNorm (`use_mean_pooling=False`), images in [0, 1] with the ImageNet mean/std.

        Training settings follow the official pre-training command (facebookresearch/data2vec_vision,
        beit/README.md, ViT-B): `--layer_scale_init_value 1e-4` (also fairseq's
        `examples/data2vec/models/data2vec_vision.py` default; transformers' 0.1 is BEiT's),
        `--drop_path 0.25` (the paper's text says stochastic depth 0.2), `--attn_drop_rate 0.05`,
        `--imagenet_default_mean_and_std`.
        """
        return cls(
            use_mask_token=True,
            use_shared_relative_position_bias=True,
            use_mean_pooling=False,
            layer_scale_init_value=1e-4,
            drop_path_rate=0.25,
            attention_probs_dropout_prob=0.05,
            pixel_mean=IMAGENET_MEAN,
            pixel_std=IMAGENET_STD,
        )

    @classmethod
    def large(cls) -> Data2VecVisionConfig:
        """ViT-L/16 (24 x 1024, 16 heads, FFN 4096), the layout of `base()`; the official ViT-L command
        uses `--layer_scale_init_value 1e-5 --drop_path 0.2 --attn_drop_rate 0.15`."""
        return replace(
            cls.base(),
            hidden_size=1024,
            num_hidden_layers=24,
            num_attention_heads=16,
            intermediate_size=4096,
            layer_scale_init_value=1e-5,
            drop_path_rate=0.2,
            attention_probs_dropout_prob=0.15,
        )


def relative_position_index(height: int, width: int) -> Tensor:
    """BEiT's index into the relative position table for a `height x width` patch grid with a CLS token
    first: int64 `[1 + h w, 1 + h w]` (query, key).

    Patches `p = (r1, c1)` (query) and `q = (r2, c2)` (key), flattened row-major, get
    `(r1 - r2 + height - 1) (2 width - 1) + (c1 - c2 + width - 1)`; with `M = (2 height - 1)(2 width - 1) + 3`
    rows in the table, CLS -> patch is `M - 3`, patch -> CLS `M - 2`, CLS -> CLS `M - 1`.
    """
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    patch_index = (rows[:, None] - rows[None] + height - 1) * (2 * width - 1) + (
        cols[:, None] - cols[None] + width - 1
    )
    num_relative = (2 * height - 1) * (2 * width - 1) + 3
    index = torch.empty(height * width + 1, height * width + 1, dtype=torch.long)
    index[1:, 1:] = patch_index
    index[0, :] = num_relative - 3
    index[:, 0] = num_relative - 2
    index[0, 0] = num_relative - 1
    return index


def gather_tokens(tokens: Tensor, keep_index: Tensor) -> Tensor:
    """`tokens[b, keep_index[b]]`: `[B, N, D]`, `[B, K]` -> `[B, K, D]`."""
    return tokens.gather(1, keep_index[..., None].expand(-1, -1, tokens.shape[-1]))


class _RelativePositionBias(nn.Module):
    """BEiT's learned relative position bias over a patch grid (+ CLS): `[1 or B, heads, T, T]`."""

    def __init__(self, grid: tuple[int, int], num_heads: int) -> None:
        super().__init__()
        num_relative = (2 * grid[0] - 1) * (2 * grid[1] - 1) + 3
        self.relative_position_bias_table = nn.Parameter(torch.zeros(num_relative, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(*grid), persistent=False)

    def forward(self, keep_index: Tensor | None = None) -> Tensor:
        """No `keep_index`: `[1, H, 1 + N, 1 + N]`; `keep_index [B, K]` (patch indices): the rows and
        columns of CLS and the kept patches, `[B, H, 1 + K, 1 + K]`."""
        index = self.relative_position_index[None]
        if keep_index is not None:
            positions = torch.cat([keep_index.new_zeros(keep_index.shape[0], 1), keep_index + 1], dim=1)
            index = self.relative_position_index[positions[:, :, None], positions[:, None, :]]
        return rearrange(self.relative_position_bias_table[index], "b i j h -> b h i j")


class _PatchEmbeddings(nn.Module):
    """`Conv2d(k=p, s=p)` patches: `[B, C, H, W]` -> `[B, N, D]` (row-major grid)."""

    def __init__(self, config: Data2VecVisionConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, kernel_size=p, stride=p)

    def forward(self, images: Tensor) -> Tensor:
        patches = self.projection(images.to(self.projection.weight.dtype))
        return rearrange(patches, "b d h w -> b (h w) d")


class _Embeddings(nn.Module):
    """CLS token, mask token, patch embedding, optional absolute positions and the embedding dropout."""

    def __init__(self, config: Data2VecVisionConfig, num_patches: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.mask_token = (
            nn.Parameter(torch.zeros(1, 1, config.hidden_size)) if config.use_mask_token else None
        )
        self.patch_embeddings = _PatchEmbeddings(config)
        self.position_embeddings = (
            nn.Parameter(torch.zeros(1, 1 + num_patches, config.hidden_size))
            if config.use_absolute_position_embeddings
            else None
        )
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, tokens: Tensor, mask: Tensor | None, keep_index: Tensor | None) -> Tensor:
        """Patch tokens `[B, N, D]` -> the first block's input `[B, 1 + N or 1 + K, D]`: masked patches
        replaced by the mask token (`x (1 - w) + mask_token w`), or only the kept ones, then CLS first."""
        if mask is not None:
            w = mask[..., None].type_as(tokens)
            tokens = tokens * (1 - w) + self.mask_token * w
        if keep_index is not None:
            tokens = gather_tokens(tokens, keep_index)
        hidden = torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        if self.position_embeddings is not None:
            positions = self.position_embeddings.expand(tokens.shape[0], -1, -1)
            if keep_index is not None:
                positions = torch.cat([positions[:, :1], gather_tokens(positions[:, 1:], keep_index)], dim=1)
            hidden = hidden + positions
        return self.dropout(hidden)


class _SelfAttention(nn.Module):
    """Multi-head self-attention (the key projection has no bias) plus additive relative position bias."""

    def __init__(self, config: Data2VecVisionConfig, grid: tuple[int, int] | None) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.dropout = config.attention_probs_dropout_prob
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.relative_position_bias = _RelativePositionBias(grid, self.num_heads) if grid else None

    def forward(self, x: Tensor, shared_bias: Tensor | None, keep_index: Tensor | None) -> Tensor:
        """`x [B, T, D]`, `shared_bias [1 or B, H, T, T]` or None -> `[B, T, D]`."""
        q, k, v = (
            rearrange(proj(x), "b t (h d) -> b h t d", h=self.num_heads)
            for proj in (self.query, self.key, self.value)
        )
        bias = shared_bias
        if self.relative_position_bias is not None:
            own = self.relative_position_bias(keep_index)
            bias = own if bias is None else bias + own
        if bias is not None:
            bias = bias.to(q.dtype)
        dropout = self.dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        return rearrange(attended, "b h t d -> b t (h d)")


class _DenseDropout(nn.Module):
    """`dense` then `dropout` (transformers' `SelfOutput` / `Output`); the block calls them one by one."""

    def __init__(self, in_features: int, out_features: int, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout)


class _Attention(nn.Module):
    def __init__(self, config: Data2VecVisionConfig, grid: tuple[int, int] | None) -> None:
        super().__init__()
        self.attention = _SelfAttention(config, grid)
        self.output = _DenseDropout(config.hidden_size, config.hidden_size, config.hidden_dropout_prob)

    def forward(self, x: Tensor, shared_bias: Tensor | None, keep_index: Tensor | None) -> Tensor:
        return self.output.dropout(self.output.dense(self.attention(x, shared_bias, keep_index)))


class _Layer(nn.Module):
    """Pre-LN BEiT block with layer scale and stochastic depth (per sample, training only)."""

    def __init__(
        self, config: Data2VecVisionConfig, grid: tuple[int, int] | None, drop_path_rate: float
    ) -> None:
        super().__init__()
        self.attention = _Attention(config, grid)
        self.intermediate = Intermediate(config.hidden_size, config.intermediate_size, config.hidden_act)
        self.output = _DenseDropout(config.intermediate_size, config.hidden_size, config.hidden_dropout_prob)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.drop_path = DropPath(drop_path_rate)
        scale = config.layer_scale_init_value
        self.lambda_1 = nn.Parameter(torch.full((config.hidden_size,), scale)) if scale > 0 else None
        self.lambda_2 = nn.Parameter(torch.full((config.hidden_size,), scale)) if scale > 0 else None

    def forward(
        self, h: Tensor, shared_bias: Tensor | None, keep_index: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """`h [B, T, D]` -> (block output `[B, T, D]`, MLP output `output.dense` before dropout, layer
        scale and residual `[B, T, D]`)."""
        attended = self.attention(self.layernorm_before(h), shared_bias, keep_index)
        if self.lambda_1 is not None:
            attended = self.lambda_1 * attended
        h = h + self.drop_path(attended)
        ffn = self.output.dense(self.intermediate(self.layernorm_after(h)))
        branch = self.output.dropout(ffn)
        if self.lambda_2 is not None:
            branch = self.lambda_2 * branch
        return h + self.drop_path(branch), ffn


class _Encoder(nn.Module):
    """The blocks, with stochastic depth rising linearly from 0 (first) to `drop_path_rate` (last), and
    the shared relative position bias when configured."""

    def __init__(self, config: Data2VecVisionConfig, grid: tuple[int, int]) -> None:
        super().__init__()
        self.relative_position_bias = (
            _RelativePositionBias(grid, config.num_attention_heads)
            if config.use_shared_relative_position_bias
            else None
        )
        rates = torch.linspace(0, config.drop_path_rate, config.num_hidden_layers).tolist()
        layer_grid = grid if config.use_relative_position_bias else None
        self.layer = nn.ModuleList(_Layer(config, layer_grid, rate) for rate in rates)


class _Pooler(nn.Module):
    """transformers' pooler: a LayerNorm of the mean patch token when `use_mean_pooling`, else nothing."""

    def __init__(self, config: Data2VecVisionConfig) -> None:
        super().__init__()
        self.layernorm = (
            nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps) if config.use_mean_pooling else None
        )


class Data2VecVisionEncoder(HuggingFaceEncoder):
    """data2vec vision (BEiT ViT) as an image encoder: `forward(images [B, C, H, W]) -> ([B, 1 + N, D], None)`
    with the CLS token first, equal to transformers' `last_hidden_state`.

    Layouts (see `Data2VecVisionConfig`): fine-tuned checkpoints (`use_relative_position_bias`,
    `use_mean_pooling`) end in Identity and pool with `pooler.layernorm` of the mean patch token;
    SSL-pretrained ones (`use_shared_relative_position_bias`, `use_mean_pooling=False`) end in `layernorm`
    and `pool` takes the mean patch token of the output, not the CLS token, which data2vec 1.0 never trains
    (its loss is on masked patches only). The pooler modules are always built (transformers'
    `add_pooling_layer=True`) so that directories round-trip exactly.

    Args:
        config: the architecture (default: transformers' defaults; `Data2VecVisionConfig.base()` for
            data2vec pre-training).

    Attributes:
        grid: `(rows, cols)` of the patch grid, `(H // p, W // p)`; patch `i` is at `divmod(i, cols)` (the
            data2vec method draws its 2-D masks and runs its 2-D decoder on it).
        num_patches: `rows * cols`.
    """

    config_class: ClassVar[type] = Data2VecVisionConfig
    hf_model_type: ClassVar[str] = "data2vec-vision"
    hf_prefix: ClassVar[str] = "data2vec_vision."
    hf_architecture: ClassVar[str] = "Data2VecVisionModel"
    modality: ClassVar[str] = "vision"
    ema_skip_keys: ClassVar[tuple[str, ...]] = ()
    # The official data2vec vision teacher is an EMA of the whole model, patch embedding included.
    teacher_shares_front_end: ClassVar[bool] = False
    pretraining_unused: ClassVar[tuple[str, ...]] = ("pooler",)
    mask_embedding: str | None = "embeddings.mask_token"

    def __init__(self, config: Data2VecVisionConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else Data2VecVisionConfig()
        config = self.config
        self.embed_dim = config.hidden_size
        self.num_layers = config.num_hidden_layers
        height, width = config.image_shape
        self.grid = (height // config.patch_size, width // config.patch_size)  # (rows, cols)
        self.num_patches = self.grid[0] * self.grid[1]
        if not config.use_mask_token:
            self.mask_embedding = None
        self.embeddings = _Embeddings(config, self.num_patches)
        self.encoder = _Encoder(config, self.grid)
        self.layernorm = (
            nn.Identity()
            if config.use_mean_pooling
            else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )
        self.pooler = _Pooler(config)
        stats = (config.pixel_mean, config.pixel_std) if config.pixel_mean is not None else (None, None)
        for name, values in zip(("pixel_mean", "pixel_std"), stats, strict=True):
            buffer = None if values is None else torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)
            self.register_buffer(name, buffer, persistent=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Fresh transformers-style weights for every module (also the random-init baseline's)."""
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """transformers' init: Linear/Conv2d weights N(0, initializer_range) and zero biases, LayerNorms
        (1, 0); CLS/mask tokens, absolute positions and relative tables stay 0, layer scale at its value."""
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            nn.init.normal_(module.weight, std=self.config.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def _check_no_padding(self, padding_mask: Tensor | None) -> None:
        if padding_mask is not None:
            raise ValueError(
                f"{type(self).__name__} takes no padding_mask (images are not padded); pass None"
            )

    def embed_tokens(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """Images `[B, C, H, W]` (`config.image_shape`) -> (patch embeddings `[B, N, D]` without CLS, None);
        with `pixel_mean`/`pixel_std` set the images are in [0, 1] and normalised first."""
        self._check_no_padding(padding_mask)
        c = self.config
        if x.dim() != 4 or x.shape[1] != c.num_channels:
            raise ValueError(
                f"{type(self).__name__} expects images [B, {c.num_channels}, H, W], got shape "
                f"{tuple(x.shape)}"
            )
        height, width = c.image_shape
        if tuple(x.shape[2:]) != (height, width):
            raise ValueError(
                f"{type(self).__name__} expects {height} x {width} images (config.image_size; its relative "
                f"position table is tied to that grid), got {x.shape[2]} x {x.shape[3]}: resize or crop the "
                f"images to {height} x {width}"
            )
        if self.pixel_mean is not None:
            x = (x - self.pixel_mean) / self.pixel_std
        return self.embeddings.patch_embeddings(x), None

    def _check_tokens(self, tokens: Tensor, mask: Tensor | None, keep_index: Tensor | None) -> None:
        if mask is not None and keep_index is not None:
            raise ValueError(
                "pass mask (data2vec 1.0: mask tokens) or keep_index (data2vec 2.0: kept patches), not both"
            )
        expected = (self.num_patches, self.embed_dim)
        if tokens.dim() != 3 or tuple(tokens.shape[1:]) != expected:
            raise ValueError(
                f"tokens must be [B, {expected[0]}, {expected[1]}] (embed_tokens), got {tuple(tokens.shape)}"
            )
        if mask is not None:
            if self.embeddings.mask_token is None:
                raise ValueError(
                    "this encoder has no mask token (config.use_mask_token=False): build it with "
                    "use_mask_token=True to mask patches, or pass keep_index to encode visible patches only"
                )
            if mask.dtype != torch.bool or tuple(mask.shape) != tuple(tokens.shape[:2]):
                raise ValueError(
                    f"mask must be bool [B, N] = {tuple(tokens.shape[:2])}, got {mask.dtype} "
                    f"{tuple(mask.shape)}"
                )
        if keep_index is not None and (
            keep_index.dtype != torch.long or keep_index.dim() != 2 or keep_index.shape[0] != tokens.shape[0]
        ):
            raise ValueError(
                f"keep_index must be int64 [B={tokens.shape[0]}, K] patch indices, got {keep_index.dtype} "
                f"{tuple(keep_index.shape)}"
            )

    def _run(
        self, tokens: Tensor, mask: Tensor | None, keep_index: Tensor | None
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """(first block input, MLP outputs, block outputs), each `[B, 1 + N or 1 + K, D]`."""
        h = self.embeddings(tokens, mask, keep_index)
        embedded = h
        shared = self.encoder.relative_position_bias
        shared_bias = shared(keep_index) if shared is not None else None
        ffn_outputs, block_outputs = [], []
        for layer in self.encoder.layer:
            h, ffn = layer(h, shared_bias, keep_index)
            ffn_outputs.append(ffn)
            block_outputs.append(h)
        return embedded, ffn_outputs, block_outputs

    def encode_tokens(
        self,
        tokens: Tensor,
        padding_mask: Tensor | None = None,
        mask: Tensor | None = None,
        keep_index: Tensor | None = None,
    ) -> Data2VecEncoding:
        """Patch tokens `[B, N, D]` -> CLS + patches through the blocks and the final norm.

        Args:
            tokens: `embed_tokens` output.
            padding_mask: must be None.
            mask: bool `[B, N]`, True = replace that patch by `embeddings.mask_token` (data2vec 1.0 student).
            keep_index: int64 `[B, K]`, encode only these patches (data2vec 2.0 student); their relative
                position bias is that of their grid positions. Output `[B, 1 + K, D]`.
        """
        self._check_no_padding(padding_mask)
        self._check_tokens(tokens, mask, keep_index)
        _, ffn_outputs, block_outputs = self._run(tokens, mask, keep_index)
        return Data2VecEncoding(
            output=self.layernorm(block_outputs[-1]),
            ffn_outputs=ffn_outputs,
            block_outputs=block_outputs,
            padding_mask=None,
            num_extra_tokens=1,
        )

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """Images -> (`last_hidden_state [B, 1 + N, D]`, CLS first; None)."""
        return self.encode_tokens(*self.embed_tokens(x, padding_mask)).output, None

    def hidden_states(self, x: Tensor, padding_mask: Tensor | None = None) -> list[Tensor]:
        """transformers' `hidden_states`: the first block's input, then every block's output (before the
        final LayerNorm), L + 1 tensors `[B, 1 + N, D]`."""
        tokens, _ = self.embed_tokens(x, padding_mask)
        embedded, _, block_outputs = self._run(tokens, None, None)
        return [embedded, *block_outputs]

    def pool(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`forward` features `[B, 1 + N, D]` -> `[B, D]`: the mean patch token (CLS excluded), through
        `pooler.layernorm` in the fine-tuned layout (transformers' `pooler_output`)."""
        self._check_no_padding(padding_mask)
        mean = features[:, 1:].mean(dim=1)
        return self.pooler.layernorm(mean) if self.pooler.layernorm is not None else mean

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm-style parameter groups for layer-wise LR decay (`coarse` gives the same groups): the
        embeddings first, then block i; the rest (shared relative position bias, final norm, pooler) is
        unmatched, hence last, as in BEiT's fine-tuning code (`get_num_layer_for_vit`: `rel_pos_bias`, `norm`,
        `fc_norm` share the top layer id)."""
        return {"stem": r"^embeddings\.", "blocks": [(r"^encoder\.layer\.(\d+)\.", None)]}

    def load_hf_state_dict(self, state: dict[str, Tensor], source: str | Path) -> None:
        """The shared strict load (a missing pooler is kept), and `relative_position_index` buffers (saved by
        older transformers versions; recomputed here) are dropped, as transformers does."""
        state = {key: value for key, value in state.items() if not key.endswith(".relative_position_index")}
        super().load_hf_state_dict(state, source)

    @classmethod
    def config_from_huggingface(cls, hf_config: dict[str, Any]) -> Data2VecVisionConfig:
        """The config of a `config.json`; a non-square size recorded by `to_huggingface` under
        `ssl_lightning_image_size` replaces the transposed `image_size` written for transformers. A non-square
        directory without it (saved by transformers) with position terms loads with a warning: transformers
        resamples its relative position table (see the module docstring) and interpolates its absolute
        positions as a square grid, so its outputs differ from this encoder's."""
        height, width = _height_width(hf_config.get("image_size", 224))
        recorded = hf_config.get(HF_IMAGE_SIZE_KEY)
        if recorded is not None:
            if list(recorded) != [width, height]:
                raise ValueError(
                    f"config.json: {HF_IMAGE_SIZE_KEY}={list(recorded)} must be image_size={[height, width]} "
                    "transposed, as to_huggingface writes them; fix one of them or remove the "
                    f"{HF_IMAGE_SIZE_KEY} key"
                )
            hf_config = {**hf_config, "image_size": list(recorded)}
        elif height != width and any(
            hf_config.get(key)
            for key in (
                "use_relative_position_bias",
                "use_shared_relative_position_bias",
                "use_absolute_position_embeddings",
            )
        ):
            warnings.warn(
                f"a non-square {height} x {width} data2vec-vision model saved by transformers: transformers "
                "5.x resamples its relative position table and interpolates its absolute positions as a "
                "square grid, so its outputs differ from this encoder's, which uses them as BEiT does",
                stacklevel=3,
            )
        return super().config_from_huggingface(hf_config)

    def huggingface_config(self) -> dict[str, Any]:
        """`config.json`; a non-square `image_size` (H, W) is written transposed, (W, H), with (H, W) under
        `ssl_lightning_image_size` (why: the module docstring).

        Raises:
            ValueError: a non-square grid with absolute position embeddings, which transformers
                interpolates as a square grid (`Data2VecVisionEmbeddings.interpolate_pos_encoding`).
        """
        hf_config = super().huggingface_config()
        height, width = self.config.image_shape
        if height != width:
            if self.config.use_absolute_position_embeddings:
                raise ValueError(
                    "transformers cannot run absolute position embeddings on a non-square "
                    f"{height} x {width} image (it interpolates them as a square grid); save a model with "
                    "use_absolute_position_embeddings=False or a square image_size, or keep its state_dict()"
                )
            hf_config["image_size"] = [width, height]
            hf_config[HF_IMAGE_SIZE_KEY] = [height, width]
        return hf_config

    def to_huggingface(self, path: str | Path) -> Path:
        """`config.json` (see `huggingface_config`) + `model.safetensors` (see `HuggingFaceEncoder`), plus
        `preprocessor_config.json` (a `BeitImageProcessor`: rescale by 1/255, normalise with the pixel
        statistics, resize to `image_size`) when `pixel_mean`/`pixel_std` are set."""
        path = super().to_huggingface(path)
        c = self.config
        if c.pixel_mean is not None:
            processor = {
                "image_processor_type": "BeitImageProcessor",
                "do_resize": True,
                "size": dict(zip(("height", "width"), c.image_shape, strict=True)),
                "resample": 3,
                "do_center_crop": False,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": list(c.pixel_mean),
                "image_std": list(c.pixel_std),
                "do_reduce_labels": False,
            }
            (path / "preprocessor_config.json").write_text(
                json.dumps(processor, indent=2, sort_keys=True) + "\n"
            )
        return path
