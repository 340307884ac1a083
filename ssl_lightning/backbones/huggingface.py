"""Hugging Face transformers model directories (`save_pretrained` output), read and written without
importing transformers: `config.json` plus `model.safetensors` (or `pytorch_model.bin`, either one
possibly sharded with an `*.index.json`).

The data2vec encoders name their modules as transformers does, so a state dict moves between the two
by adding or removing the task model's prefix (`data2vec_audio.` ...) and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

Config = TypeVar("Config")


def _load_weights(path: Path, name: str) -> dict[str, Tensor]:
    if name.endswith(".safetensors"):
        return load_file(path / name, device="cpu")
    return torch.load(path / name, map_location="cpu", weights_only=True)


def _read_weights(path: Path) -> dict[str, Tensor]:
    for name in WEIGHT_FILES:
        if (path / name).is_file():
            return _load_weights(path, name)
        index = path / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, Tensor] = {}
            for shard in shards:
                if not (path / shard).is_file():
                    raise FileNotFoundError(f"{index} lists the shard {shard!r}, which is not in {path}")
                state.update(_load_weights(path, shard))
            return state
    raise FileNotFoundError(
        f"{path} has no weights: expected one of {', '.join(WEIGHT_FILES)} (or a sharded *.index.json), "
        "as transformers' save_pretrained writes them"
    )


def read_hf_directory(
    path: str | Path, model_type: str, prefix: str
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """`(config, state_dict)` of a transformers directory whose `config.json` has `model_type`.

    A task model's weights (`ForCTC`, `ForImageClassification`, `ForMaskedLM`, ...) are the base model's
    under `prefix` (e.g. `data2vec_audio.`) plus a head: the prefix is removed and the head dropped.

    Raises:
        FileNotFoundError: no such directory, no `config.json` or no weights (the message names them).
        ValueError: `config.json` is of another model type.
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"Hugging Face model directory {str(path)!r} does not exist; pass a folder written by "
            "save_pretrained (config.json + model.safetensors or pytorch_model.bin)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{path} has no config.json; it is not a transformers save_pretrained folder")
    config = json.loads(config_file.read_text())
    if config.get("model_type") != model_type:
        raise ValueError(
            f"{config_file} is a {config.get('model_type')!r} model, not {model_type!r}; load it with the "
            "encoder of its modality"
        )
    state = _read_weights(path)
    if any(key.startswith(prefix) for key in state):
        state = {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}
    return config, state


def write_hf_directory(path: str | Path, config: dict[str, Any], state_dict: dict[str, Tensor]) -> Path:
    """Write `config.json` and `model.safetensors` into `path` (created) and return it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tensors = {key: value.detach().to("cpu").contiguous().clone() for key, value in state_dict.items()}
    save_file(tensors, path / "model.safetensors", metadata={"format": "pt"})
    return path


def config_from_hf(cls: type[Config], hf_config: dict[str, Any]) -> Config:
    """The dataclass `cls` from the transformers config keys of the same names (others ignored; lists
    become tuples where the field's default is a tuple)."""
    values = {}
    for field in dataclasses.fields(cls):
        if field.name in hf_config:
            value = hf_config[field.name]
            values[field.name] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def config_to_hf(config: Any, model_type: str, architecture: str) -> dict[str, Any]:
    """A transformers `config.json` dict: the dataclass fields under their (shared) names, plus the model
    type and architecture that `AutoModel.from_pretrained` dispatches on."""
    values = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(config).items()
    }
    return {**values, "model_type": model_type, "architectures": [architecture]}
