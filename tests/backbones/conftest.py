"""Helpers of the data2vec encoder tests (audio, text, vision, spectrogram), each a fixture returning a
function: an encoder with a transformers fixture's weights, exact weight comparison, edits of a saved
Hugging Face directory, and building an encoder from YAML values through jsonargparse."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from jsonargparse import ArgumentParser
from safetensors.torch import load_file, save_file
from torch import nn


@pytest.fixture(scope="session")
def fixture_encoder() -> Callable[..., nn.Module]:
    """`(cls, fx, **overrides)`: an encoder `cls` (eval) of a fixture's transformers config (with
    `overrides` of config fields) and its weights, loaded strictly under transformers' own key names."""

    def make(cls: type, fx: dict, **overrides: Any) -> nn.Module:
        encoder = cls(dataclasses.replace(cls.config_from_huggingface(fx["config"]), **overrides))
        encoder.load_state_dict(fx["state_dict"])
        return encoder.eval()

    return make


@pytest.fixture(scope="session")
def assert_same_weights() -> Callable[[nn.Module, nn.Module], None]:
    """`(expected, got)`: the same state-dict keys, every tensor equal to the bit (fails naming the key)."""

    def check(expected: nn.Module, got: nn.Module) -> None:
        want, have = expected.state_dict(), got.state_dict()
        assert have.keys() == want.keys()
        for key, tensor in want.items():
            assert torch.equal(have[key], tensor), key

    return check


@pytest.fixture(scope="session")
def set_model_type() -> Callable[[Path, str], None]:
    """`(directory, model_type)`: rewrite the `model_type` of a saved directory's `config.json`."""

    def rewrite(directory: Path, model_type: str) -> None:
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "model_type": model_type}))

    return rewrite


@pytest.fixture(scope="session")
def drop_weight() -> Callable[[Path, str], None]:
    """`(directory, key)`: delete one tensor from a saved directory's `model.safetensors`."""

    def drop(directory: Path, key: str) -> None:
        state = load_file(directory / "model.safetensors")
        del state[key]
        save_file(state, directory / "model.safetensors")

    return drop


@pytest.fixture(scope="session")
def encoder_from_yaml() -> Callable[[str, dict], nn.Module]:
    """`(class_path, init_args)`: the encoder jsonargparse builds from YAML-style values, as the CLI does."""

    def build(class_path: str, init_args: dict) -> nn.Module:
        parser = ArgumentParser()
        parser.add_argument("--encoder", type=nn.Module)
        parsed = parser.parse_object({"encoder": {"class_path": class_path, "init_args": init_args}})
        return parser.instantiate(parsed).encoder

    return build
