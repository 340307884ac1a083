"""Tiny ImageNet-style folder layout: `root/{train,val}/<class>/<image>`.

Three classes named like ImageNet synsets, 4 train and 2 val images each, of different sizes and
aspect ratios, as PNG and JPEG (upper- and lower-case endings, as in ImageNet's `.JPEG`), plus a
non-image file that the loader must skip. Class c's images are noise around a class colour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("n01440764", "n01443537", "n01484850")
SIZES = ((40, 30), (24, 36), (32, 32), (50, 20))
"""(width, height) of the images, cycled."""


def write_image_folder(root: Path, train_per_class: int = 4, val_per_class: int = 2, seed: int = 0) -> Path:
    """Write the layout under `root` and return `root`."""
    rng = np.random.default_rng(seed)
    colours = np.random.default_rng(1234).integers(40, 216, size=(len(CLASSES), 3))
    for split, count in (("train", train_per_class), ("val", val_per_class)):
        for label, name in enumerate(CLASSES):
            folder = Path(root) / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                width, height = SIZES[i % len(SIZES)]
                noise = rng.integers(-30, 31, size=(height, width, 3))
                pixels = np.clip(colours[label] + noise, 0, 255).astype(np.uint8)
                ending = ".png" if i % 2 == 0 else ".JPEG"
                Image.fromarray(pixels).save(folder / f"{name}_{split}_{i}{ending}")
            (folder / "notes.txt").write_text("not an image\n")
    return Path(root)


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    write_image_folder(root)
    return {"root": str(root)}
