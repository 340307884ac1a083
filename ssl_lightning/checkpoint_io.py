"""Checkpoint and report files with errors that name them: `torch.load` says "central directory" or
"Ran out of input" for a truncated or empty file and never which file it was, and a folder that
cannot be written is found before the work whose results would go there, not after."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointReadError(RuntimeError):
    """A checkpoint file exists but cannot be read (truncated, empty, or not a checkpoint)."""


def read_checkpoint(path: str | os.PathLike, **load_kwargs: Any) -> Any:
    """`torch.load(path, map_location="cpu", **load_kwargs)`; FileNotFoundError for a missing file and
    CheckpointReadError naming `path` for one that cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist; pass the path of a checkpoint file"
        )
    load_kwargs.setdefault("map_location", "cpu")
    try:
        return torch.load(path, **load_kwargs)
    except Exception as error:  # torch.load raises RuntimeError, EOFError, UnpicklingError, ... by cause
        if str(error).startswith("Weights only load failed"):
            raise  # a readable file holding objects beyond tensors: the caller decides
        raise CheckpointReadError(
            f"checkpoint {str(path)!r} ({path.stat().st_size} bytes) cannot be read: "
            f"{type(error).__name__}: {error}. The file is truncated (an interrupted save or copy), empty, "
            "or not a PyTorch checkpoint; use another checkpoint or re-run the step that writes it."
        ) from error


def is_readable_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a checkpoint that loads (memory-mapped, so large files are cheap to check)."""
    try:
        read_checkpoint(path, mmap=True, weights_only=False)
    except (FileNotFoundError, CheckpointReadError):
        return False
    return True


def ensure_writable_folder(path: str | os.PathLike) -> Path:
    """`path`, created if needed, once a file could be written in it; OSError otherwise (the caller says
    which setting to change)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tempfile.TemporaryFile(dir=path).close()
    return path
