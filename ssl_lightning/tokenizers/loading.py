"""Load the acoustic tokenizer of a BEATs iteration from a file, whichever stage wrote it.

    load_tokenizer("Tokenizer_iter3.pt")                                      # official release
    load_tokenizer("runs/beats/tokenizer_iter2/checkpoints/last.ckpt")        # our tokenizer training

Run directories follow `runs/beats/<stage>/checkpoints/last.ckpt`, where `<stage>` is the recipe name
without the `beats_` prefix (`recipes/beats_tokenizer_iter2.yaml` -> `runs/beats/tokenizer_iter2/`).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_lightning.tokenizers.beats_tokenizer import SelfDistilledTokenizer
from ssl_lightning.tokenizers.random_projection import RandomProjectionTokenizer

_STAGE = re.compile(r"tokenizer_iter\w+")


def _missing_file_hint(path: Path) -> str:
    """How to produce a missing tokenizer file, from the run-directory convention of its path."""
    stage = next((part for part in path.parts if _STAGE.fullmatch(part)), None)
    if stage is not None:
        return f"run `lightning fit --config recipes/beats_{stage}.yaml` first (it writes {path})"
    return (
        "train a tokenizer with recipes/beats_tokenizer_iter*.yaml (it writes "
        "runs/beats/tokenizer_iter*/checkpoints/last.ckpt) or pass an official Tokenizer_iter*.pt file"
    )


def load_tokenizer(path: str | os.PathLike) -> nn.Module:
    """The tokenizer stored in `path`, on CPU, in eval mode.

    - an official BEATs tokenizer file (`{"cfg", "model"}`) ->
      `SelfDistilledTokenizer.from_official_checkpoint`;
    - a Lightning `.ckpt` of an ssl_lightning method -> that method's `.tokenizer` (via `load_method`).

    Raises FileNotFoundError naming the recipe that produces a missing file, and ValueError for a file
    that holds no tokenizer.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"tokenizer checkpoint {str(path)!r} does not exist; {_missing_file_hint(path)}"
        )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        checkpoint = None
    if isinstance(checkpoint, Mapping) and {"cfg", "model"} <= set(checkpoint):
        return SelfDistilledTokenizer.from_official_checkpoint(checkpoint).eval()
    from ssl_lightning.methods import load_method

    method = load_method(path)
    tokenizer = getattr(method, "tokenizer", None)
    if not isinstance(tokenizer, nn.Module):
        raise ValueError(
            f"{path} is a {type(method).__name__} checkpoint, which has no `tokenizer`; pass the checkpoint "
            "of a tokenizer-training run (recipes/beats_tokenizer_iter*.yaml) or an official tokenizer file"
        )
    return tokenizer.eval()


def codebook_size(tokenizer: nn.Module) -> int:
    """Number of distinct labels K of a tokenizer: its `codebook_size`, or `config.quant_n` (official)."""
    size = getattr(tokenizer, "codebook_size", None)
    if size is None:
        size = getattr(getattr(tokenizer, "config", None), "quant_n", None)
    if not isinstance(size, int) or size < 1:
        raise TypeError(
            f"cannot tell the codebook size of {type(tokenizer).__name__}: give it a `codebook_size` int "
            "attribute (or a `config.quant_n`)"
        )
    return size


def tokenizer_config(tokenizer: nn.Module) -> dict[str, Any]:
    """A plain `{"class_path", "init_args"}` config (jsonargparse style) that rebuilds the architecture of
    `tokenizer`; its weights are restored from a state dict. Plain values keep checkpoints loadable with
    `torch.load(weights_only=True)`, which resuming a run uses."""
    if isinstance(tokenizer, RandomProjectionTokenizer):
        init_args: dict[str, Any] = {
            "codebook_size": tokenizer.codebook_size,
            "codebook_dim": tokenizer.codebook_dim,
            "patch_size": tokenizer.patch_size,
            "seed": tokenizer.seed,
        }
    elif isinstance(tokenizer, SelfDistilledTokenizer):
        init_args = {"config": tokenizer.config.to_dict()}
    else:
        raise TypeError(
            f"no config is known for a {type(tokenizer).__name__} tokenizer; give it as a "
            "class_path/init_args config in the recipe instead of a tokenizer_checkpoint"
        )
    cls = type(tokenizer)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}
