"""data2vec audio encoder (Baevski et al., 2022): transformers' `Data2VecAudioModel`, module for module.

waveform `[B, T]` (16 kHz, not normalised here) -> conv feature extractor (per layer: Conv1d -> LayerNorm
over channels -> GELU; 50 Hz frames for the standard 7-layer stack) -> `feature_projection` (LayerNorm,
Linear, dropout) = the local features -> padded frames zeroed -> `x + pos_conv_embed(x)` (a stack of
grouped convs) -> `encoder.layer_norm` -> post-LN Transformer blocks.

Modules and parameters carry transformers' names, so `state_dict()` is the transformers base model's
(`from_huggingface` / `to_huggingface` move weights with no renaming). The data2vec hooks
(`embed_tokens`, `encode_tokens`) split the model where fairseq's data2vec splits it: the teacher
consumes the student's local features and runs only the Transformer part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.backbones.beats import check_audio_batch
from ssl_lightning.backbones.data2vec_common import (
    ACTIVATIONS,
    Data2VecEncoding,
    HuggingFaceEncoder,
    check_activations,
    check_divide_hidden_size,
    check_probabilities,
)
from ssl_lightning.nn.attention import MultiheadSelfAttention
from ssl_lightning.nn.distributed import world_size
from ssl_lightning.nn.pooling import masked_mean
from ssl_lightning.nn.transformer import skip_in_graph


@dataclass
class Data2VecAudioConfig:
    """The keys of transformers' `Data2VecAudioConfig` this architecture uses, with its defaults.

    `conv_dim` / `conv_kernel` / `conv_stride` describe the conv feature extractor (one entry per layer);
    the positional embedding is `num_conv_pos_embeddings` grouped convs of kernel `conv_pos_kernel_size`.
    `masked_spec_embed` exists only when `mask_time_prob > 0` or `mask_feature_prob > 0` (as in
    transformers); this encoder applies no SpecAugment itself, masking is the method's (`encode_tokens`).
    """

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    activation_dropout: float = 0.1
    attention_dropout: float = 0.1
    feat_proj_dropout: float = 0.0
    layerdrop: float = 0.1
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    feat_extract_activation: str = "gelu"
    conv_dim: tuple[int, ...] = (512, 512, 512, 512, 512, 512, 512)
    conv_stride: tuple[int, ...] = (5, 2, 2, 2, 2, 2, 2)
    conv_kernel: tuple[int, ...] = (10, 3, 3, 3, 3, 2, 2)
    conv_bias: bool = False
    num_conv_pos_embedding_groups: int = 16
    conv_pos_kernel_size: int = 19
    num_conv_pos_embeddings: int = 5
    mask_time_prob: float = 0.05
    mask_feature_prob: float = 0.0

    def __post_init__(self) -> None:
        self.conv_dim, self.conv_stride, self.conv_kernel = (
            tuple(self.conv_dim),
            tuple(self.conv_stride),
            tuple(self.conv_kernel),
        )
        lengths = {len(self.conv_dim), len(self.conv_stride), len(self.conv_kernel)}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                "Data2VecAudioConfig.conv_dim, conv_stride and conv_kernel need one entry per conv layer "
                f"(same non-zero length); got {self.conv_dim}, {self.conv_stride}, {self.conv_kernel}"
            )
        check_activations(self, "hidden_act", "feat_extract_activation")
        check_divide_hidden_size(self, "num_attention_heads", "num_conv_pos_embedding_groups")
        check_probabilities(
            self,
            "hidden_dropout",
            "activation_dropout",
            "attention_dropout",
            "feat_proj_dropout",
            "layerdrop",
            one_allowed=True,
        )

    @classmethod
    def base(cls) -> Data2VecAudioConfig:
        """data2vec Base: 12 blocks of width 768, 12 heads, FFN 3072 (transformers' defaults)."""
        return cls()

    @classmethod
    def large(cls) -> Data2VecAudioConfig:
        """data2vec Large: 24 blocks of width 1024, 16 heads, FFN 4096."""
        return cls(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)


class ConvLayer(nn.Module):
    """One feature-extractor layer: `[B, C_in, T] -> [B, C_out, floor((T - k) / s) + 1]`, Conv1d then
    LayerNorm over channels then the activation."""

    def __init__(self, config: Data2VecAudioConfig, index: int) -> None:
        super().__init__()
        in_dim = config.conv_dim[index - 1] if index > 0 else 1
        out_dim = config.conv_dim[index]
        self.conv = nn.Conv1d(
            in_dim,
            out_dim,
            config.conv_kernel[index],
            stride=config.conv_stride[index],
            bias=config.conv_bias,
        )
        self.layer_norm = nn.LayerNorm(out_dim)
        self.activation = ACTIVATIONS[config.feat_extract_activation]

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer_norm(self.conv(x).transpose(1, 2)).transpose(1, 2)
        return self.activation(x)


class FeatureEncoder(nn.Module):
    """The conv feature extractor: waveform `[B, T]` -> `[B, conv_dim[-1], N]`."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.conv_layers = nn.ModuleList(ConvLayer(config, index) for index in range(len(config.conv_dim)))

    def forward(self, waveform: Tensor) -> Tensor:
        x = waveform[:, None]
        for layer in self.conv_layers:
            x = layer(x)
        return x


class FeatureProjection(nn.Module):
    """`[B, N, conv_dim[-1]]` -> `[B, N, hidden_size]`: LayerNorm, Linear. Its dropout in transformers
    (`feat_proj_dropout`, fairseq's `dropout_input`) is applied by `encode_tokens`."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_dim[-1], eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_dim[-1], config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.layer_norm(x))


class PositionalConvLayer(nn.Module):
    """`[B, D, N] -> [B, D, N]`: grouped Conv1d (padding k // 2; an even kernel's extra last frame is
    dropped), LayerNorm over channels without affine parameters, activation."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        kernel = config.conv_pos_kernel_size
        self.conv = nn.Conv1d(
            config.hidden_size,
            config.hidden_size,
            kernel,
            padding=kernel // 2,
            groups=config.num_conv_pos_embedding_groups,
        )
        self.num_pad_remove = 1 if kernel % 2 == 0 else 0
        self.layer_norm = nn.LayerNorm(config.hidden_size, elementwise_affine=False)
        self.activation = ACTIVATIONS[config.feat_extract_activation]

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.num_pad_remove:
            x = x[:, :, : -self.num_pad_remove]
        return self.activation(self.layer_norm(x.transpose(1, 2)).transpose(1, 2))


class PositionalConvEmbedding(nn.Module):
    """The relative positional embedding `[B, N, D] -> [B, N, D]`: `num_conv_pos_embeddings` conv layers."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            PositionalConvLayer(config) for _ in range(config.num_conv_pos_embeddings)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)
        for layer in self.layers:
            x = layer(x)
        return x.transpose(1, 2)


class FeedForward(nn.Module):
    """`output_dense(Drop_act(act(intermediate_dense(x))))`: `[B, N, D] -> [B, N, D]`, before the block's
    dropout (data2vec's speech targets are this value)."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.intermediate_dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output_dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.activation = ACTIVATIONS[config.hidden_act]
        self.activation_dropout = config.activation_dropout

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.dropout(
            self.activation(self.intermediate_dense(x)), self.activation_dropout, self.training
        )
        return self.output_dense(hidden)


class EncoderLayer(nn.Module):
    """Post-LN block: `h = layer_norm(x + Drop(Attn(x)))`, `out = final_layer_norm(h + Drop(FFN(h)))`."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.attention = MultiheadSelfAttention(
            config.hidden_size, config.num_attention_heads, config.attention_dropout
        )
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = config.hidden_dropout

    def forward(self, x: Tensor, key_padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """`x[B, N, D]`, bool `key_padding_mask[B, N]` (keys never attended to) -> `(out, ffn)`, both
        `[B, N, D]`: the block output and the FFN output before dropout and residual."""
        x = self.layer_norm(x + F.dropout(self.attention(x, key_padding_mask), self.dropout, self.training))
        ffn = self.feed_forward(x)
        return self.final_layer_norm(x + F.dropout(ffn, self.dropout, self.training)), ffn


class ContextEncoder(nn.Module):
    """The Transformer part (`encoder`): positional conv, input LayerNorm, blocks with layer dropout."""

    def __init__(self, config: Data2VecAudioConfig) -> None:
        super().__init__()
        self.pos_conv_embed = PositionalConvEmbedding(config)
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_hidden_layers))
        self.dropout = config.hidden_dropout
        self.layerdrop = config.layerdrop

    def embed_positions(
        self, x: Tensor, padding_mask: Tensor | None = None, keep_index: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """The input of the first block: `LayerNorm(x + pos_conv_embed(x))` (then dropout) after zeroing
        padded frames and, with `keep_index[B, K]`, every frame not kept; those K frames are then
        gathered (the conv sees the full zero-filled sequence, as data2vec 2.0's `encoder_zero_mask`).
        The LayerNorm and dropout act per frame, so they run after the gather.

        Returns `([B, N or K, D], padding_mask [B, N or K] or None)`.
        """
        dropped = padding_mask
        if keep_index is not None:
            kept = torch.zeros(x.shape[:2], dtype=torch.bool, device=x.device).scatter_(1, keep_index, True)
            dropped = ~kept if dropped is None else dropped | ~kept
        if dropped is not None:
            x = x.masked_fill(dropped[..., None], 0.0)
        x = x + self.pos_conv_embed(x)
        if keep_index is not None:
            x = x.gather(1, keep_index[..., None].expand(-1, -1, x.shape[-1]))
            padding_mask = None if padding_mask is None else padding_mask.gather(1, keep_index)
        return F.dropout(self.layer_norm(x), self.dropout, self.training), padding_mask

    def run_blocks(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """`(ffn_outputs, block_outputs)` of the blocks on `x[B, N, D]`, L tensors `[B, N, D]` each.

        Padded keys are never attended to (a row that is all padding attends to all of its frames, not
        NaN). In training each block is skipped with probability `layerdrop` (one `torch.rand` per block,
        as transformers): in one process it gets no gradient; under DDP it stays in the graph at weight
        zero (`skip_in_graph`). A skipped block's entry in both lists is its unchanged input.
        """
        if padding_mask is not None:
            padding_mask = padding_mask & ~padding_mask.all(dim=1, keepdim=True)
        ffn_outputs, block_outputs = [], []
        for layer in self.layers:
            if self.training and self.layerdrop > 0.0 and torch.rand(()) < self.layerdrop:
                if world_size() > 1:  # DDP waits for a gradient of every parameter, zero will do
                    x = skip_in_graph(x, layer)
                ffn = x
            else:
                x, ffn = layer(x, padding_mask)
            ffn_outputs.append(ffn)
            block_outputs.append(x)
        return ffn_outputs, block_outputs


class Data2VecAudioEncoder(HuggingFaceEncoder):
    """data2vec audio: waveform `[B, T]` -> `(features [B, N, D], padding_mask [B, N] or None)`, equal to
    transformers' `Data2VecAudioModel.last_hidden_state` (padding_mask True where padded).

    `embed_tokens` = conv feature extractor + `feature_projection` (50 Hz local features of the
    standard stack); `encode_tokens` = the rest: `feat_proj_dropout`, masked frames replaced by
    `masked_spec_embed` (data2vec 1.0) or only the frames in `keep_index` encoded (data2vec 2.0), then
    the Transformer.

    Args:
        config: architecture (transformers' key names); `Data2VecAudioConfig.base()` when None.
    """

    config_class = Data2VecAudioConfig
    hf_model_type = "data2vec-audio"
    hf_prefix = "data2vec_audio."
    hf_architecture = "Data2VecAudioModel"
    modality: ClassVar[str] = "audio"
    # fairseq data2vec audio: the teacher EMAs the Transformer only and consumes the student's local features.
    teacher_shares_front_end: ClassVar[bool] = True
    # fairseq copies the positional conv into the teacher each step instead of averaging it.
    ema_skip_keys: ClassVar[tuple[str, ...]] = (
        "masked_spec_embed",
        "feature_extractor",
        "feature_projection",
        "encoder.pos_conv_embed",
    )
    mask_embedding: ClassVar[str | None] = "masked_spec_embed"
    pretraining_unused: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Data2VecAudioConfig | None = None) -> None:
        super().__init__()
        config = Data2VecAudioConfig.base() if config is None else config
        if not isinstance(config, Data2VecAudioConfig):
            raise TypeError(f"config must be a Data2VecAudioConfig, got {type(config).__name__}")
        self.config = config
        self.embed_dim = config.hidden_size
        self.num_layers = config.num_hidden_layers
        self.min_samples = 1  # the receptive field of one frame, in samples
        for kernel, stride in zip(reversed(config.conv_kernel), reversed(config.conv_stride), strict=True):
            self.min_samples = (self.min_samples - 1) * stride + kernel
        self.feature_extractor = FeatureEncoder(config)
        self.feature_projection = FeatureProjection(config)
        if config.mask_time_prob > 0.0 or config.mask_feature_prob > 0.0:
            self.masked_spec_embed = nn.Parameter(torch.empty(config.hidden_size))
        self.encoder = ContextEncoder(config)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self) -> None:
        """transformers' init: Linear N(0, initializer_range) with zero bias, conv Kaiming-normal (a conv
        bias U(+-sqrt(groups / fan_in)), zero in the positional convs), `feature_projection.projection`
        U(+-1/sqrt(fan_in)), LayerNorm 1/0, `masked_spec_embed` U[0, 1)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=self.config.initializer_range)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Conv1d):
                nn.init.kaiming_normal_(module.weight)
                if module.bias is not None:
                    bound = math.sqrt(module.groups / (module.in_channels * module.kernel_size[0]))
                    nn.init.uniform_(module.bias, -bound, bound)
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        projection = self.feature_projection.projection
        bound = 1.0 / math.sqrt(projection.in_features)
        nn.init.uniform_(projection.weight, -bound, bound)
        nn.init.uniform_(projection.bias, -bound, bound)
        for layer in self.encoder.pos_conv_embed.layers:
            nn.init.zeros_(layer.conv.bias)
        if hasattr(self, "masked_spec_embed"):
            nn.init.uniform_(self.masked_spec_embed)

    def num_frames(self, num_samples: int | Tensor) -> int | Tensor:
        """Frames from samples: `floor((L - k) / s) + 1` per conv layer, at least 0 (16000 -> 49 for the
        standard stack)."""
        for kernel, stride in zip(self.config.conv_kernel, self.config.conv_stride, strict=True):
            num_samples = (num_samples - kernel) // stride + 1
        return num_samples.clamp(min=0) if isinstance(num_samples, Tensor) else max(num_samples, 0)

    def frame_padding_mask(self, padding_mask: Tensor, num_frames: int) -> Tensor:
        """bool `[B, num_frames]`, True past the frames of each row's valid samples (`padding_mask[B, T]`
        True where padded; as in transformers, the valid samples are counted, padding assumed at the end)."""
        lengths = self.num_frames((~padding_mask).sum(dim=1))
        return torch.arange(num_frames, device=padding_mask.device) >= lengths[:, None]

    def embed_tokens(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Local features `[B, N, D]` of waveform `x[B, T]` and their padding mask `[B, N]` (None without
        one)."""
        check_audio_batch(x, padding_mask)
        if x.shape[1] < self.min_samples:
            raise ValueError(
                f"the waveform has {x.shape[1]} samples, fewer than the {self.min_samples} that one frame of "
                f"the conv feature extractor (conv_kernel={self.config.conv_kernel}, conv_stride="
                f"{self.config.conv_stride}) needs; pad or drop such clips"
            )
        tokens = self.feature_projection(self.feature_extractor(x).transpose(1, 2))
        if padding_mask is not None:
            padding_mask = self.frame_padding_mask(padding_mask, tokens.shape[1])
        return tokens, padding_mask

    def _check_tokens(
        self, tokens: Tensor, padding_mask: Tensor | None, mask: Tensor | None, keep_index: Tensor | None
    ) -> None:
        if tokens.dim() != 3 or tokens.shape[-1] != self.embed_dim:
            raise ValueError(
                f"tokens must be [B, N, {self.embed_dim}] (embed_tokens' output); got {tuple(tokens.shape)}"
            )
        for name, value in (("padding_mask", padding_mask), ("mask", mask)):
            if value is not None and (value.shape != tokens.shape[:2] or value.dtype != torch.bool):
                raise ValueError(
                    f"{name} must be a bool tensor [B, N] = {tuple(tokens.shape[:2])}; got {value.dtype} "
                    f"{tuple(value.shape)}"
                )
        if mask is not None and keep_index is not None:
            raise ValueError("pass mask (data2vec 1.0) or keep_index (data2vec 2.0), not both")
        if mask is not None and not hasattr(self, "masked_spec_embed"):
            raise ValueError(
                "this encoder has no masked_spec_embed (mask_time_prob and mask_feature_prob are 0); set "
                "config.mask_time_prob > 0 to encode with a mask"
            )
        bad_index = keep_index is not None and (
            keep_index.dim() != 2 or keep_index.shape[0] != tokens.shape[0] or keep_index.dtype != torch.long
        )
        if bad_index:
            raise ValueError(
                f"keep_index must be an int64 tensor [B={tokens.shape[0]}, K] of frame indices; got "
                f"{keep_index.dtype} {tuple(keep_index.shape)}"
            )

    def encode_tokens(
        self,
        tokens: Tensor,
        padding_mask: Tensor | None = None,
        mask: Tensor | None = None,
        keep_index: Tensor | None = None,
    ) -> Data2VecEncoding:
        """The Transformer part on local features `tokens[B, N, D]`.

        `tokens` first go through `feat_proj_dropout` (training only): fairseq's data2vec hands the teacher
        the local features before this dropout (`pre_encoder_features`), and the teacher runs in eval mode.

        Args:
            tokens, padding_mask: `embed_tokens`' output (`padding_mask` bool `[B, N]`, True at padding).
            mask: bool `[B, N]`, True at frames replaced by `masked_spec_embed` (data2vec 1.0 student).
            keep_index: int64 `[B, K]` frames to encode (data2vec 2.0 student): the others are zeroed for
                the positional conv and left out of the blocks; outputs have K frames in this order.
        Returns:
            `Data2VecEncoding` (no extra tokens); a block skipped by layer dropout contributes its unchanged
            input to both `ffn_outputs` and `block_outputs`, so each has L entries.
        """
        self._check_tokens(tokens, padding_mask, mask, keep_index)
        tokens = F.dropout(tokens, self.config.feat_proj_dropout, self.training)
        if mask is not None:
            tokens = torch.where(mask[..., None], self.masked_spec_embed.to(tokens.dtype), tokens)
        x, padding_mask = self.encoder.embed_positions(tokens, padding_mask, keep_index)
        ffn_outputs, block_outputs = self.encoder.run_blocks(x, padding_mask)
        output = block_outputs[-1] if block_outputs else x
        return Data2VecEncoding(output, ffn_outputs, block_outputs, padding_mask)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """waveform `x[B, T]`, bool `padding_mask[B, T]` -> `(features [B, N, D], padding_mask [B, N] or
        None)`."""
        encoding = self.encode_tokens(*self.embed_tokens(x, padding_mask))
        return encoding.output, encoding.padding_mask

    def hidden_states(self, x: Tensor, padding_mask: Tensor | None = None) -> list[Tensor]:
        """L + 1 tensors `[B, N, D]`: the first block's input, then every block's output (transformers'
        `hidden_states`)."""
        tokens, padding_mask = self.embed_tokens(x, padding_mask)
        x, padding_mask = self.encoder.embed_positions(tokens, padding_mask)
        return [x, *self.encoder.run_blocks(x, padding_mask)[1]]

    def pool(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Mean over the valid frames: `[B, N, D]` -> `[B, D]`."""
        return masked_mean(features, padding_mask)

    def group_matcher(self, coarse: bool = False) -> dict:
        """timm layer groups for layer-wise LR decay (`coarse` gives the same): the front-end, positional
        conv and input LayerNorm first, then block i."""
        return {
            "stem": r"^(?:masked_spec_embed|feature_extractor|feature_projection|encoder\.pos_conv_embed|"
            r"encoder\.layer_norm)",
            "blocks": [(r"^encoder\.layers\.(\d+)\.", None)],
        }
