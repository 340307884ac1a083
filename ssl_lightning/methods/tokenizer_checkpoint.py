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

from torch import nn

from ssl_lightning.checkpoint_io import read_checkpoint
from ssl_lightning.methods.base import load_method
from ssl_lightning.tokenizers import SelfDistilledTokenizer

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
        checkpoint = read_checkpoint(path, weights_only=True)
    except pickle.UnpicklingError:  # more than tensors: a Lightning checkpoint
        checkpoint = None
    if isinstance(checkpoint, Mapping) and {"cfg", "model"} <= set(checkpoint):
        return SelfDistilledTokenizer.from_official_checkpoint(checkpoint).eval()
    method = load_method(path)
    tokenizer = getattr(method, "tokenizer", None)
    if not isinstance(tokenizer, nn.Module):
        raise ValueError(
            f"{path} is a {type(method).__name__} checkpoint, which has no `tokenizer`; pass the checkpoint "
            "of a tokenizer-training run (recipes/beats_tokenizer_iter*.yaml) or an official tokenizer file"
        )
    return tokenizer.eval()
