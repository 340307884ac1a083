"""Tiny copy of the CIFAR-10 python-pickle layout (`cifar-10-batches-py/`), see CIFAR100DataModule.py."""

from __future__ import annotations

import runpy
from pathlib import Path

write_cifar = runpy.run_path(str(Path(__file__).with_name("CIFAR100DataModule.py")))["write_cifar"]


def make(root: Path) -> dict:
    """Tiny CIFAR-10 under `root` (3 train and 2 test images per class); the `data.init_args` overrides."""
    write_cifar(root, "cifar10")
    return {"root": str(root)}
