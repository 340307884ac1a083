"""BEATs audio ViT (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers", ICML 2023),
compatible with the official `microsoft/unilm` `beats/` checkpoints.

Waveform `[B, T]` at 16 kHz -> Kaldi fbank (128 mels, x32768, (fbank - 15.41663) / (2 * 6.55582))
-> 16x16 patch conv (time-major patch order: index = time_patch * 8 + freq_patch) -> LayerNorm
-> post-extract projection -> Transformer (conv positional embedding, gated relative position bias,
DeepNorm post-LN). `BEATsClassifier` adds the fine-tuning head (linear per patch, mean over patches).

Official checkpoints are dicts `{"cfg": dict, "model": state_dict}` (+ `label_dict` when fine-tuned).
`from_official_checkpoint` builds the module from `cfg` and loads `model` strictly; the module's
own state-dict names differ from the official ones only in three places, converted both ways:
`encoder.pos_conv.0.*` <-> `encoder.pos_conv.*`; the relative position table, which the official
model shares between layers and stores once per layer (`encoder.layers.{i}.self_attn.
relative_attention_bias.weight`), <-> `encoder.relative_position.weight`; and with the `glu`
activation `fc1.linear.*` <-> `fc1.*`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.audio import KaldiFbank
from ssl_lightning.audio.fbank import BEATS_FBANK_MEAN, BEATS_FBANK_STD
from ssl_lightning.nn.pooling import masked_mean
from ssl_lightning.nn.transformer import ACTIVATIONS, TransformerEncoder

ConfigT = TypeVar("ConfigT", bound="BEATsEncoderConfig")
CheckpointSource = str | os.PathLike | Mapping[str, Any]

_POSITIVE_INT_FIELDS = (
    "input_patch_size",
    "embed_dim",
    "encoder_layers",
    "encoder_embed_dim",
    "encoder_ffn_embed_dim",
    "encoder_attention_heads",
    "conv_pos",
    "conv_pos_groups",
)
_PROBABILITY_FIELDS = (
    "dropout",
    "attention_dropout",
    "activation_dropout",
    "encoder_layerdrop",
    "dropout_input",
)
_RELATIVE_TABLE = "encoder.relative_position.weight"
_OFFICIAL_RELATIVE_TABLE = re.compile(r"encoder\.layers\.(\d+)\.self_attn\.relative_attention_bias\.weight")


@dataclass
class BEATsEncoderConfig:
    """Encoder fields shared by the official `BEATsConfig` and `TokenizersConfig` (same names/defaults).

    Defaults are the official code defaults, not the released models' values (see `BEATsConfig.base`),
    except `input_patch_size`, whose official placeholder -1 cannot build a model.
    """

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_wise_gradient_decay_ratio: float = 1.0
    layer_norm_first: bool = False
    deep_norm: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = False
    num_buckets: int = 320
    max_distance: int = 1280
    gru_rel_pos: bool = False

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in _POSITIVE_INT_FIELDS:
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                hint = " (the official placeholder -1 is unusable; released models use 16)" * (
                    field == "input_patch_size"
                )
                raise ValueError(f"{name}.{field} must be a positive int, got {value!r}{hint}")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(
                f"{name}.encoder_attention_heads={self.encoder_attention_heads} must divide "
                f"encoder_embed_dim={self.encoder_embed_dim}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"{name}.conv_pos_groups={self.conv_pos_groups} must divide "
                f"encoder_embed_dim={self.encoder_embed_dim}"
            )
        if self.activation_fn not in ACTIVATIONS:
            raise ValueError(f"{name}.activation_fn={self.activation_fn!r} is not one of {ACTIVATIONS}")
        if self.deep_norm and self.layer_norm_first:
            raise ValueError(f"{name}: deep_norm=True needs post-LN layers; set layer_norm_first=False")
        for field in _PROBABILITY_FIELDS:
            if not 0.0 <= getattr(self, field) < 1.0:
                raise ValueError(f"{name}.{field} must be in [0, 1), got {getattr(self, field)!r}")
        if self.relative_position_embedding and (self.num_buckets < 4 or self.num_buckets % 2):
            raise ValueError(f"{name}.num_buckets must be an even number >= 4, got {self.num_buckets}")
        if self.relative_position_embedding and self.max_distance <= self.num_buckets // 4:
            raise ValueError(
                f"{name}.max_distance={self.max_distance} must exceed num_buckets // 4 "
                f"= {self.num_buckets // 4}"
            )

    @classmethod
    def from_dict(cls: type[ConfigT], cfg: Mapping[str, Any], strict: bool = False) -> ConfigT:
        """Config from an official `cfg` dict; missing keys take the defaults.

        Keys that are not fields raise a `ValueError` when `strict`, else are ignored with a warning
        (the official configs accept any key silently).
        """
        if not isinstance(cfg, Mapping):
            raise TypeError(f"{cls.__name__}.from_dict expects a dict, got {type(cfg).__name__}")
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(cfg) - fields)
        if unknown:
            message = f"{cls.__name__} has no field(s) {unknown}; valid fields: {sorted(fields)}"
            if strict:
                raise ValueError(message)
            warnings.warn(f"{message}. Ignoring them.", stacklevel=2)
        return cls(**{key: value for key, value in cfg.items() if key in fields})

    def transformer(self, num_layers: int | None = None, fused_attn: bool = True) -> TransformerEncoder:
        """A Transformer of this config's kind (width, heads, FFN, positions, norms, dropouts).

        `num_layers=None` builds the encoder itself (with its layer drop and gradient decay); a
        given depth builds a head of the same kind (MAM label predictor, tokenizer estimator).
        """
        encoder = num_layers is None
        return TransformerEncoder(
            dim=self.encoder_embed_dim,
            num_layers=self.encoder_layers if encoder else num_layers,
            num_heads=self.encoder_attention_heads,
            ffn_dim=self.encoder_ffn_embed_dim,
            conv_pos=self.conv_pos,
            conv_pos_groups=self.conv_pos_groups,
            relative_position_embedding=self.relative_position_embedding,
            num_buckets=self.num_buckets,
            max_distance=self.max_distance,
            gated_relative_position=self.gru_rel_pos,
            layer_norm_first=self.layer_norm_first,
            deep_norm=self.deep_norm,
            dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            activation_dropout=self.activation_dropout,
            layerdrop=self.encoder_layerdrop if encoder else 0.0,
            layer_wise_gradient_decay_ratio=self.layer_wise_gradient_decay_ratio if encoder else 1.0,
            activation=self.activation_fn,
            fused_attn=fused_attn,
        )

    def to_dict(self) -> dict[str, Any]:
        """The official `cfg` dict (plain Python values)."""
        return dataclasses.asdict(self)


@dataclass
class BEATsConfig(BEATsEncoderConfig):
    """The official `BEATsConfig`: encoder fields plus the fine-tuning head (`finetuned_model`)."""

    finetuned_model: bool = False
    predictor_dropout: float = 0.1
    predictor_class: int = 527

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.predictor_class, int) or self.predictor_class < 1:
            raise ValueError(
                f"BEATsConfig.predictor_class must be a positive int, got {self.predictor_class!r}"
            )
        if not 0.0 <= self.predictor_dropout < 1.0:
            raise ValueError(
                f"BEATsConfig.predictor_dropout must be in [0, 1), got {self.predictor_dropout!r}"
            )

    @classmethod
    def base(cls, **overrides: Any) -> BEATsConfig:
        """The architecture of the released BEATs models (12 x 768, 12 heads, 90M parameters, DeepNorm,
        gated relative bias, max_distance 800) and their training knobs (layerdrop 0.05, layer-wise
        gradient decay 0.6, no dropout), as reported from the released `cfg`s; `overrides` replace fields."""
        released = dict(
            input_patch_size=16,
            deep_norm=True,
            dropout=0.0,
            attention_dropout=0.0,
            encoder_layerdrop=0.05,
            relative_position_embedding=True,
            max_distance=800,
            gru_rel_pos=True,
            layer_wise_gradient_decay_ratio=0.6,
        )
        return cls(**{**released, **overrides})


def load_official_checkpoint(src: CheckpointSource) -> Mapping[str, Any]:
    """An official checkpoint dict from a path (loaded with `weights_only=True`) or the dict itself,
    checked to hold `cfg` (dict) and `model` (state dict)."""
    if isinstance(src, Mapping):
        checkpoint = src
    else:
        if not os.path.isfile(src):
            raise FileNotFoundError(f"BEATs checkpoint {os.fspath(src)!r} does not exist")
        try:
            checkpoint = torch.load(src, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ValueError(
                f"cannot load {os.fspath(src)!r} with torch.load(weights_only=True): {err}. If you trust the "
                "file, load it yourself with torch.load(path, weights_only=False) and pass the dict instead"
            ) from err
    if not isinstance(checkpoint, Mapping) or not {"cfg", "model"} <= set(checkpoint):
        found = sorted(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
        raise ValueError(
            f"not an official BEATs checkpoint: expected a dict with 'cfg' and 'model', found {found}"
        )
    if not isinstance(checkpoint["cfg"], Mapping):
        raise ValueError(f"checkpoint['cfg'] must be a dict, got {type(checkpoint['cfg']).__name__}")
    return checkpoint


def split_state_dict(state: Mapping[str, Tensor], prefixes: tuple[str, ...]) -> tuple[dict, dict]:
    """`(keys under any of prefixes, with the prefix kept; every other key)` of a state dict."""
    head = {key: value for key, value in state.items() if key.startswith(prefixes)}
    return head, {key: value for key, value in state.items() if key not in head}


def _first(keys: list[str], count: int = 8) -> str:
    """The first `count` keys, for error messages."""
    return str(keys[:count])[:-1] + (", ...]" if len(keys) > count else "]")


def check_audio_batch(waveform: Tensor, padding_mask: Tensor | None) -> None:
    """Raise a clear error unless `waveform` is float `[B, T]` and `padding_mask` None or bool `[B, T]`."""
    if waveform.dim() != 2 or not waveform.is_floating_point():
        raise ValueError(
            f"waveform must be a float tensor [B, T]; got {waveform.dtype} {tuple(waveform.shape)}"
        )
    bad_mask = padding_mask is not None and (
        padding_mask.shape != waveform.shape or padding_mask.dtype != torch.bool
    )
    if bad_mask:
        raise ValueError(
            f"padding_mask must be a bool tensor shaped like the waveform {tuple(waveform.shape)}; got "
            f"{padding_mask.dtype} {tuple(padding_mask.shape)}"
        )


def reduce_padding_mask(padding_mask: Tensor, length: int) -> Tensor:
    """The official mapping of a padding mask `[B, M]` onto `length` steps: bool `[B, length]`.

    Drops the last `M % length` entries, groups the rest into `length` runs of consecutive entries and
    marks a step padded when its whole run is. Applied samples -> fbank frames -> patches; the second
    step groups frames in proportion and ignores the time-major patch layout (8 frequency patches per
    time step), so it is only approximately the patches that hold padding: kept for parity.
    """
    if padding_mask.dim() != 2 or padding_mask.dtype != torch.bool:
        raise ValueError(
            f"padding_mask must be a bool tensor [B, T]; got {padding_mask.dtype} {tuple(padding_mask.shape)}"
        )
    if not 1 <= length <= padding_mask.shape[1]:
        raise ValueError(f"cannot reduce a padding mask of length {padding_mask.shape[1]} to {length} steps")
    usable = padding_mask.shape[1] - padding_mask.shape[1] % length
    return rearrange(padding_mask[:, :usable], "b (n k) -> b n k", n=length).all(dim=-1)


class BEATsEncoder(nn.Module):
    """BEATs encoder: `waveform[B, T]` -> `(features[B, N, D], padding_mask[B, N] or None)`.

    Follows the library's audio-encoder contract (`forward`, `embed_dim`, `pool`, `group_matcher`)
    and the official API (`extract_features`, same outputs). For masked audio modelling,
    `embed_patches` + `encode_patches(..., keep_index)` encode only the visible patches at their
    true positions (see `encode_patches`).

    Args:
        config: encoder fields of an official config (`BEATsConfig`, or a tokenizer config).
        fused_attn: attention through `F.scaled_dot_product_attention` (False: the official op order).
        fbank_mean, fbank_std: the fbank normalisation, `(fbank - mean) / (2 * std)`: AudioSet's
            statistics by default (pre-training, AS-2M/AS-20K); Table 4 gives each fine-tuning data
            set its own (ESC-50 11.72215 / 10.60431, ...).
    """

    def __init__(
        self,
        config: BEATsEncoderConfig,
        fused_attn: bool = True,
        fbank_mean: float = BEATS_FBANK_MEAN,
        fbank_std: float = BEATS_FBANK_STD,
    ) -> None:
        super().__init__()
        self.config = config
        self.embed_dim = config.encoder_embed_dim
        self.patch_size = config.input_patch_size
        self.fbank = KaldiFbank(mean=fbank_mean, std=fbank_std)
        self.post_extract_proj = (
            nn.Linear(config.embed_dim, config.encoder_embed_dim)
            if config.embed_dim != config.encoder_embed_dim
            else None
        )
        self.patch_embedding = nn.Conv2d(
            1, config.embed_dim, kernel_size=self.patch_size, stride=self.patch_size, bias=config.conv_bias
        )
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.encoder = config.transformer(fused_attn=fused_attn)
        self.layer_norm = nn.LayerNorm(config.embed_dim)

    def num_patches(self, num_samples: int) -> int:
        """Patches N for a clip of `num_samples` at 16 kHz: (fbank frames // P) * (128 // P); 96 for 2 s."""
        frames = 1 + (num_samples - 400) // 160 if num_samples >= 400 else 0
        return (frames // self.patch_size) * (self.fbank.num_mel_bins // self.patch_size)

    def preprocess(self, waveform: Tensor) -> Tensor:
        """Normalised Kaldi fbank `[B, frames, 128]` of `waveform[B, T]` in [-1, 1], always in float32."""
        with torch.autocast(waveform.device.type, enabled=False):
            return self.fbank(waveform.float())

    def spectrogram(self, waveform: Tensor) -> Tensor:
        """The encoder's input spectrogram (`preprocess`): `waveform[B, T]` -> fbank `[B, frames, 128]`,
        where spectrogram-domain augmentations (SpecAugment) act before `encode_spectrogram`."""
        return self.preprocess(waveform)

    def embed_patches(
        self, waveform: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Patch embeddings before the Transformer: `waveform[B, T]` -> `(patches[B, N, D], mask[B, N])`.

        fbank, then `embed_spectrogram`. The sample padding mask is mapped to patches the official way
        (`reduce_padding_mask`); None without an input mask.
        """
        check_audio_batch(waveform, padding_mask)
        return self.embed_spectrogram(self.preprocess(waveform), padding_mask)

    def embed_spectrogram(
        self, fbank: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """`fbank[B, frames, 128]` -> `(patches[B, N, D], mask[B, N] | None)`: 16x16 patch conv, LayerNorm,
        projection to D, input dropout; `padding_mask` is the waveform's sample mask `[B, T]`, if any."""
        if fbank.dim() != 3 or fbank.shape[1] < self.patch_size:
            raise ValueError(
                f"fbank must be [B, frames >= {self.patch_size}, mels]; got shape {tuple(fbank.shape)}. "
                f"Pad clips to at least {400 + 160 * (self.patch_size - 1)} samples (one {self.patch_size}-"
                "frame patch)"
            )
        patches = rearrange(self.patch_embedding(fbank[:, None]), "b e t f -> b (t f) e")
        if padding_mask is not None:
            frame_mask = reduce_padding_mask(padding_mask, fbank.shape[1])
            padding_mask = reduce_padding_mask(frame_mask, patches.shape[1])
        patches = self.layer_norm(patches)
        if self.post_extract_proj is not None:
            patches = self.post_extract_proj(patches)
        return self.dropout_input(patches), padding_mask

    def encode_patches(
        self, patches: Tensor, padding_mask: Tensor | None = None, keep_index: Tensor | None = None
    ) -> Tensor:
        """Transformer over `patches[B, N, D]`: `[B, N, D]`, or `[B, K, D]` for the patches in `keep_index`.

        Visible-token encoding (the paper feeds only the unmasked patches to the encoder but does not
        say how they keep their positions; here they keep their full-sequence positions): with
        `keep_index[B, K]` the K kept patches are gathered first; their conv positional embedding is
        the conv of the full-length sequence in which every patch outside `keep_index` (and every
        padded patch) is zero, so no masked content leaks into it, evaluated at the kept positions
        only (`ConvPositionalEmbedding(x, positions=keep_index)`: only pairs of kept patches within
        the kernel's reach are multiplied, about (K / N)^2 of the dense conv's work, the same numbers
        up to float rounding); then they attend to each other with the relative position bias of
        their original indices. With all N indices in order this equals the full forward pass up
        to float rounding.
        """
        if keep_index is not None and (
            keep_index.dim() != 2 or keep_index.shape[0] != patches.shape[0] or keep_index.dtype != torch.long
        ):
            raise ValueError(
                f"keep_index must be an int64 tensor [B={patches.shape[0]}, K]; got {keep_index.dtype} "
                f"{tuple(keep_index.shape)}"
            )
        return self.encoder(patches, padding_mask, keep_index)

    def extract_features(
        self, waveform: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Official API: last-layer features `[B, N, D]` and the patch padding mask `[B, N]` (None without
        a mask). Padded patches are not zeroed in the output."""
        patches, padding_mask = self.embed_patches(waveform, padding_mask)
        return self.encode_patches(patches, padding_mask), padding_mask

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """`waveform[B, T]`, bool `padding_mask[B, T]` -> `(features[B, N, D], padding_mask[B, N] | None)`."""
        return self.extract_features(waveform, padding_mask)

    def encode_spectrogram(self, fbank: Tensor) -> tuple[Tensor, None]:
        """All-patch features `[B, N, D]` of a (possibly augmented) `spectrogram` `[B, frames, 128]`."""
        patches, _ = self.embed_spectrogram(fbank)
        return self.encode_patches(patches), None

    def encode_visible(
        self, waveform: Tensor, keep_index: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Features `[B, K, D]` of the patches `keep_index[B, K]` only (see `encode_patches`) and their
        padding mask `[B, K]` (None without a mask)."""
        patches, padding_mask = self.embed_patches(waveform, padding_mask)
        features = self.encode_patches(patches, padding_mask, keep_index)
        return features, None if padding_mask is None else padding_mask.gather(1, keep_index)

    def pool(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Mean over non-padded patches: `[B, N, D]` -> `[B, D]`."""
        return masked_mean(features, padding_mask)

    def group_matcher(self, coarse: bool = False) -> Callable[[str], int]:
        """Layer ids for layer-wise LR decay (timm style; `coarse` gives the same groups): the patch
        front-end, positional embeddings and the input LayerNorm of post-LN models 0, Transformer
        layer i -> i + 1, the final LayerNorm of pre-LN models last."""
        num_layers = self.config.encoder_layers
        final_norm = num_layers + 1 if self.config.layer_norm_first else 0

        def layer_id(name: str) -> int:
            if name.startswith("encoder.layers."):
                return int(name.split(".")[2]) + 1
            if name.startswith("encoder.layer_norm."):
                return final_norm
            return 0

        return layer_id

    def official_state_dict(self) -> dict[str, Tensor]:
        """The state dict under the official key names (the relative table once per layer)."""
        glu = self.config.activation_fn == "glu"
        state = {}
        for name, tensor in self.state_dict().items():
            if name == _RELATIVE_TABLE:
                for index in range(self.config.encoder_layers):
                    state[f"encoder.layers.{index}.self_attn.relative_attention_bias.weight"] = tensor
                continue
            name = name.replace("encoder.pos_conv.", "encoder.pos_conv.0.", 1)
            state[re.sub(r"^(encoder\.layers\.\d+\.fc1)\.", r"\1.linear.", name) if glu else name] = tensor
        return state

    def load_official_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Load an official encoder state dict strictly (every key, no extra key, same shapes).

        The official model shares one relative position table between layers; as with the official
        `load_state_dict`, the last layer's copy is the one kept (a warning is raised if copies differ).
        """
        expected = self.official_state_dict()
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(
                f"the checkpoint does not match the config: missing keys {_first(missing)}, unexpected keys "
                f"{_first(unexpected)} (is the cfg the one saved with these weights?)"
            )
        native, tables = {}, {}
        for name, tensor in state.items():
            table = _OFFICIAL_RELATIVE_TABLE.fullmatch(name)
            if table:
                tables[int(table.group(1))] = tensor
                continue
            name = name.replace("encoder.pos_conv.0.", "encoder.pos_conv.", 1)
            native[re.sub(r"^(encoder\.layers\.\d+\.fc1)\.linear\.", r"\1.", name)] = tensor
        if tables:
            copies = [tables[index] for index in sorted(tables)]
            if any(not torch.equal(copy, copies[-1]) for copy in copies):
                warnings.warn(
                    "the per-layer copies of the shared relative position table differ; using the last "
                    "layer's copy, as the official loader does",
                    stacklevel=2,
                )
            native[_RELATIVE_TABLE] = copies[-1]
        self.load_state_dict(native, strict=True)

    @classmethod
    def from_official_checkpoint(cls, src: CheckpointSource, fused_attn: bool = True) -> BEATsEncoder:
        """Encoder of a pre-trained official checkpoint (path or loaded dict), loaded strictly."""
        checkpoint = load_official_checkpoint(src)
        if any(key.startswith(("predictor.", "quantize")) for key in checkpoint["model"]):
            kind = "fine-tuned (predictor.*)" if "predictor.weight" in checkpoint["model"] else "tokenizer"
            use = (
                "BEATsClassifier.from_official_checkpoint (its .encoder is the BEATsEncoder)"
                if kind.startswith("fine")
                else "ssl_lightning.tokenizers.SelfDistilledTokenizer.from_official_checkpoint"
            )
            raise ValueError(f"this is a {kind} checkpoint, not a pre-trained encoder; load it with {use}")
        encoder = cls(BEATsConfig.from_dict(checkpoint["cfg"]), fused_attn=fused_attn)
        encoder.load_official_state_dict(checkpoint["model"])
        return encoder

    def to_official_checkpoint(self) -> dict[str, Any]:
        """`{"cfg": ..., "model": ...}` loadable by the official `BEATs` class (`finetuned_model=False`)."""
        config = self.config
        if isinstance(config, BEATsConfig):
            config = dataclasses.replace(config, finetuned_model=False)
        else:
            fields = {field.name for field in dataclasses.fields(BEATsEncoderConfig)}
            config = BEATsConfig(**{key: value for key, value in config.to_dict().items() if key in fields})
        return {"cfg": config.to_dict(), "model": self.official_state_dict()}


class BEATsClassifier(nn.Module):
    """Fine-tuned BEATs: encoder + linear `predictor` on every patch, averaged over non-padded patches.

    `forward` returns the pooled logits `[B, C]`; `predict_proba` their sigmoid, which is what the
    official `extract_features` of a fine-tuned model returns.

    Args:
        config: a `BEATsConfig`; `predictor_class` sets C (`finetuned_model` is set to True).
        label_dict: class index -> name, as stored in fine-tuned official checkpoints.
        fused_attn: attention through `F.scaled_dot_product_attention`.
    """

    def __init__(
        self, config: BEATsConfig, label_dict: dict[int, str] | None = None, fused_attn: bool = True
    ) -> None:
        super().__init__()
        self.config = dataclasses.replace(config, finetuned_model=True)
        self.label_dict = label_dict
        self.encoder = BEATsEncoder(self.config, fused_attn=fused_attn)
        self.predictor_dropout = nn.Dropout(config.predictor_dropout)
        self.predictor = nn.Linear(config.encoder_embed_dim, config.predictor_class)

    def frame_logits(
        self, waveform: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Per-patch logits `[B, N, C]` and the patch padding mask `[B, N]` (None without a mask)."""
        features, padding_mask = self.encoder(waveform, padding_mask)
        return self.predictor(self.predictor_dropout(features)), padding_mask

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Clip logits `[B, C]`: the per-patch logits averaged over non-padded patches."""
        return masked_mean(*self.frame_logits(waveform, padding_mask))

    def predict_proba(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Sigmoid class probabilities `[B, C]` (multi-label, as the official fine-tuned models)."""
        return torch.sigmoid(self(waveform, padding_mask))

    @classmethod
    def from_official_checkpoint(cls, src: CheckpointSource, fused_attn: bool = True) -> BEATsClassifier:
        """Classifier of a fine-tuned official checkpoint (path or loaded dict), loaded strictly."""
        checkpoint = load_official_checkpoint(src)
        config = BEATsConfig.from_dict(checkpoint["cfg"])
        if not config.finetuned_model:
            raise ValueError(
                "this checkpoint has finetuned_model=False (no predictor): load it with "
                "BEATsEncoder.from_official_checkpoint, or build BEATsClassifier(config) to fine-tune it"
            )
        model = cls(config, label_dict=checkpoint.get("label_dict"), fused_attn=fused_attn)
        head, body = split_state_dict(checkpoint["model"], ("predictor.",))
        model.encoder.load_official_state_dict(body)
        model.predictor.load_state_dict(
            {key.removeprefix("predictor."): value for key, value in head.items()}
        )
        return model

    def to_official_checkpoint(self) -> dict[str, Any]:
        """`{"cfg", "model"[, "label_dict"]}`, loadable by the official `BEATs` class (fine-tuned)."""
        state = self.encoder.official_state_dict()
        state.update({f"predictor.{key}": value for key, value in self.predictor.state_dict().items()})
        checkpoint: dict[str, Any] = {"cfg": self.config.to_dict(), "model": state}
        if self.label_dict is not None:
            checkpoint["label_dict"] = dict(self.label_dict)
        return checkpoint
