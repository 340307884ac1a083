"""What the three data2vec encoders (audio, vision, text) share: the per-block outputs the data2vec
teacher builds its targets from, loading/saving Hugging Face transformers directories, the checks of
their configs' common keys and the FFN's first half (`Intermediate`).

Each encoder names its modules exactly as transformers' `Data2Vec{Audio,Vision,Text}Model` does, so its
`state_dict()` is the transformers state dict and its config dataclass uses transformers' config keys.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.backbones.huggingface import (
    config_from_hf,
    config_to_hf,
    read_hf_directory,
    write_hf_directory,
)

log = logging.getLogger(__name__)

# transformers' ACT2FN entries that data2vec configs use ("gelu" is the exact erf GELU there too).
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def check_activations(config: Any, *fields: str) -> None:
    """ValueError naming the field unless each of `config`'s `fields` is an `ACTIVATIONS` name."""
    for field in fields:
        if getattr(config, field) not in ACTIVATIONS:
            raise ValueError(
                f"{type(config).__name__}.{field}={getattr(config, field)!r} is not supported; choose one of "
                f"{sorted(ACTIVATIONS)}"
            )


def check_divide_hidden_size(config: Any, *fields: str) -> None:
    """ValueError naming the field unless each of `config`'s `fields` (head or group counts) is a positive
    divisor of `config.hidden_size`."""
    for field in fields:
        divisor = getattr(config, field)
        if divisor < 1 or config.hidden_size % divisor:
            raise ValueError(
                f"{type(config).__name__}.{field}={divisor} must divide hidden_size={config.hidden_size}"
            )


def check_probabilities(config: Any, *fields: str, one_allowed: bool) -> None:
    """ValueError naming the field unless each of `config`'s `fields` lies in [0, 1] (`one_allowed`, e.g. a
    layer drop of 1 skips every block) or in [0, 1)."""
    for field in fields:
        value = getattr(config, field)
        if not (0.0 <= value <= 1.0 if one_allowed else 0.0 <= value < 1.0):
            interval = "[0, 1]" if one_allowed else "[0, 1)"
            raise ValueError(f"{type(config).__name__}.{field} must be in {interval}, got {value!r}")


@dataclass
class Data2VecEncoding:
    """One pass of a data2vec encoder over (possibly masked or subsampled) tokens.

    Attributes:
        output: `[B, N', D]` the encoder's output (what `forward` returns for the same tokens).
        ffn_outputs: per block, `[B, N', D]` the FFN's output before its residual add (and before the
            post-LN of post-LN blocks): data2vec's targets for speech and text.
        block_outputs: per block, `[B, N', D]` the block's output: data2vec's targets for vision.
        padding_mask: `[B, N']` True at padded tokens, or None.
        num_extra_tokens: tokens prepended before the data tokens (vision: 1, the CLS token).
    """

    output: Tensor
    ffn_outputs: list[Tensor]
    block_outputs: list[Tensor]
    padding_mask: Tensor | None
    num_extra_tokens: int = 0


class Intermediate(nn.Module):
    """The FFN's first linear and activation `[B, N, hidden_size] -> [B, N, intermediate_size]`
    (transformers' `Data2VecTextIntermediate` / `Data2VecVisionIntermediate`: the same `dense` key)."""

    def __init__(self, hidden_size: int, intermediate_size: int, hidden_act: str) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)
        self.activation = ACTIVATIONS[hidden_act]

    def forward(self, x: Tensor) -> Tensor:
        return self.activation(self.dense(x))


class HuggingFaceEncoder(nn.Module):
    """Mixin: `from_huggingface` / `load_huggingface` / `to_huggingface` for an encoder whose state dict is
    a transformers model's.

    A subclass sets `config_class` (a dataclass with transformers' key names, stored as `self.config`),
    `hf_model_type` (`config.json`'s `model_type`), `hf_prefix` (the base model's prefix in task models,
    e.g. `data2vec_audio.`) and `hf_architecture` (the base model class name); it may override
    `config_from_huggingface` / `huggingface_config` for keys that need translating.
    """

    config_class: ClassVar[type]
    hf_model_type: ClassVar[str]
    hf_prefix: ClassVar[str]
    hf_architecture: ClassVar[str]
    config: Any

    @classmethod
    def config_from_huggingface(cls, hf_config: dict[str, Any]) -> Any:
        """This encoder's config from a transformers `config.json` dict."""
        return config_from_hf(cls.config_class, hf_config)

    def huggingface_config(self) -> dict[str, Any]:
        """The transformers `config.json` dict of this encoder."""
        return config_to_hf(self.config, self.hf_model_type, self.hf_architecture)

    @classmethod
    def from_huggingface(cls, path: str | Path) -> HuggingFaceEncoder:
        """The encoder saved in a transformers `save_pretrained` directory (base or task model; heads are
        ignored), with its config and weights."""
        hf_config, state = read_hf_directory(path, cls.hf_model_type, cls.hf_prefix)
        encoder = cls(cls.config_from_huggingface(hf_config))
        encoder.load_hf_state_dict(state, path)
        return encoder

    def load_huggingface(self, path: str | Path) -> None:
        """Load the weights of a transformers directory into this encoder (same architecture)."""
        _, state = read_hf_directory(path, self.hf_model_type, self.hf_prefix)
        self.load_hf_state_dict(state, path)

    def load_hf_state_dict(self, state: dict[str, Tensor], source: str | Path) -> None:
        """Load a transformers state dict strictly; ValueError naming `source` and the keys that differ.

        One exception, as transformers makes it: a directory without pooler weights (the released text
        checkpoints are `ForMaskedLM` models, a vision model may be saved without `add_pooling_layer`)
        keeps this encoder's own, untrained pooler; a log line says so."""
        own_pooler = {key: value for key, value in self.state_dict().items() if key.startswith("pooler.")}
        if own_pooler and not any(key.startswith("pooler.") for key in state):
            log.info(
                "%s has no pooler weights; %s keeps its own, untrained pooler", source, type(self).__name__
            )
            state = {**state, **own_pooler}
        try:
            missing, unexpected = self.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise ValueError(
                f"the weights in {source} do not fit {type(self).__name__}({self.config}): {err}"
            ) from err
        if missing or unexpected:
            raise ValueError(
                f"the weights in {source} do not fit {type(self).__name__}: missing {sorted(missing)[:8]}, "
                f"unexpected {sorted(unexpected)[:8]}; build the encoder with from_huggingface (its "
                "config.json) or a config of the same architecture"
            )

    def to_huggingface(self, path: str | Path) -> Path:
        """Write `config.json` + `model.safetensors` that transformers' `AutoModel.from_pretrained` loads
        as the same model (same outputs on the same input); returns the directory."""
        return write_hf_directory(path, self.huggingface_config(), self.state_dict())
