"""Tiny ImageNet-style class folders for `DabsImageFolderDataModule`: `root/{train,val}/<class>/<image>`,
the layout of `ImageFolderDataModule.py` (3 synset-named classes, 4 train and 2 val images each, of mixed
sizes, PNG and `.JPEG`, plus a non-image file to skip)."""

from __future__ import annotations

import runpy
from pathlib import Path

write_image_folder = runpy.run_path(str(Path(__file__).with_name("ImageFolderDataModule.py")))[
    "write_image_folder"
]


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    write_image_folder(root)
    return {"root": str(root), "small": True, "batch_size": 4, "num_workers": 0}
