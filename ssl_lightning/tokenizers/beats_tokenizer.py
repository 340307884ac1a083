"""BEATs self-distilled acoustic tokenizer (Chen et al., ICML 2023, section 3.2.2), inference side.

A BEATs encoder, a `quantize_layer` (Linear D->D, Tanh, Linear D->Q) and a cosine vector quantizer
with a normalised-EMA codebook: each 16x16 fbank patch gets the index of its nearest codeword.
Compatible with the official `microsoft/unilm` `beats/Tokenizers.py` checkpoints (`{"cfg", "model"}`).
The paper's estimator and distillation loss are not part of the release and not part of this module
(see `ssl_lightning.methods.beats_tokenizer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ssl_lightning.backbones.beats import (
    BEATsEncoder,
    BEATsEncoderConfig,
    CheckpointSource,
    load_official_checkpoint,
    split_state_dict,
)
from ssl_lightning.nn.vector_quantizer import NormEMAVectorQuantizer, QuantizerOutput

_HEAD_PREFIXES = ("quantize.", "quantize_layer.")


@dataclass
class SelfDistilledTokenizerConfig(BEATsEncoderConfig):
    """The official `TokenizersConfig`: encoder fields plus the codebook size and dimension."""

    quant_n: int = 1024
    quant_dim: int = 256

    def __post_init__(self) -> None:
        super().__post_init__()
        for field in ("quant_n", "quant_dim"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(
                    f"SelfDistilledTokenizerConfig.{field} must be a positive int, got {value!r}"
                )


class SelfDistilledTokenizer(nn.Module):
    """`waveform[B, T]` -> discrete patch labels `[B, N]` in [0, quant_n).

    `extract_labels` is pure inference (no gradients, no codebook or usage-statistics update, in any
    mode; the official code updates `quantize.cluster_size` even in eval mode). `forward` returns the
    quantizer output and, in training mode, initialises a fresh codebook by k-means on the batch and
    takes one normalised-EMA step on the codebook from the non-padded patches. Training with the
    paper's estimator and distillation loss: `ssl_lightning.methods.beats_tokenizer`.

    Args:
        config: tokenizer config (`quant_n` codewords of dimension `quant_dim`).
        fused_attn: attention through `F.scaled_dot_product_attention`.
    """

    def __init__(self, config: SelfDistilledTokenizerConfig, fused_attn: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoder = BEATsEncoder(config, fused_attn=fused_attn)
        dim = config.encoder_embed_dim
        self.quantize_layer = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, config.quant_dim))
        self.quantize = NormEMAVectorQuantizer(config.quant_n, config.quant_dim, beta=1.0, decay=0.99)

    def forward(
        self, waveform: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[QuantizerOutput, Tensor | None]:
        """Quantizer output (`quantized[B, N, Q]`, commitment `loss`, `indices[B, N]`) and the patch
        padding mask `[B, N]` (None without a mask); padded patches do not update the codebook."""
        encoded, padding_mask = self.encode(waveform, padding_mask)
        valid = None if padding_mask is None else ~padding_mask
        return self.quantize(encoded, valid), padding_mask

    def encode(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The quantizer input `e[B, N, Q]` (encoder, then `quantize_layer`; not yet l2-normalised) and
        the patch padding mask `[B, N]` (None without a mask)."""
        features, padding_mask = self.encoder(waveform, padding_mask)
        return self.quantize_layer(features), padding_mask

    @torch.no_grad()
    def extract_labels(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Labels int64 `[B, N]` (padded patches get labels too; the mask only affects attention).

        The official `extract_labels` returns them flattened: `labels.flatten()` (index b * N + t).
        Keep the tokenizer in eval mode for deterministic labels (training mode enables dropout).
        """
        return self.quantize.encode(self.encode(waveform, padding_mask)[0])

    @classmethod
    def from_official_checkpoint(
        cls, src: CheckpointSource, fused_attn: bool = True
    ) -> SelfDistilledTokenizer:
        """Tokenizer of an official checkpoint (path or loaded dict), loaded strictly."""
        checkpoint = load_official_checkpoint(src)
        head, body = split_state_dict(checkpoint["model"], _HEAD_PREFIXES)
        if not head:
            raise ValueError(
                "this checkpoint has no quantize.* / quantize_layer.* weights, so it is not a tokenizer; "
                "load it with ssl_lightning.backbones.beats.BEATsEncoder or BEATsClassifier"
            )
        tokenizer = cls(SelfDistilledTokenizerConfig.from_dict(checkpoint["cfg"]), fused_attn=fused_attn)
        expected = set(split_state_dict(tokenizer.state_dict(), _HEAD_PREFIXES)[0])
        if set(head) != expected:
            raise ValueError(
                f"the tokenizer keys do not match the config: missing {sorted(expected - set(head))}, "
                f"unexpected {sorted(set(head) - expected)}"
            )
        tokenizer.encoder.load_official_state_dict(body)
        tokenizer.load_state_dict(head, strict=False)
        return tokenizer

    def to_official_checkpoint(self) -> dict[str, Any]:
        """`{"cfg": ..., "model": ...}` loadable by the official `Tokenizers` class."""
        head, _ = split_state_dict(self.state_dict(), _HEAD_PREFIXES)
        return {"cfg": self.config.to_dict(), "model": {**self.encoder.official_state_dict(), **head}}
