"""`ImageFolderDataModule`: ImageNet-style `root/<split>/<class>/<image>` folders.

Classes are the sub-folders of the train folder, sorted by name (ImageNet: the 1000 synset ids
`n01440764`, ...). Images are decoded with PIL, converted to RGB, resized so that the shorter side is
`resize_size` (bilinear, antialiased) and center-cropped to `image_size` x `image_size`: the usual
evaluation transform (256 -> 224 for ImageNet). Random crops and flips are not done here: the methods
make their views on device.

Splits: "train" (the train folder), "test" (the val folder: ImageNet's labelled val set is the test
set of the papers), and "valid": a class-balanced `val_fraction` of the train folder held out, or the
val folder when `val_fraction` is 0 (the default). ImageNet's val images come in one flat folder;
sort them into class folders first (e.g. with the `valprep.sh` script that many ImageNet recipes use).
`subset_file` selects the labelled train images by name instead of `label_fraction`, e.g. SimCLR's
`imagenet_subsets/1percent.txt` / `10percent.txt`: one `<file>` or `<class>/<file>` per line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ssl_lightning.data.image.datamodule import ImageDataModule, ImageSource, SplitSources, holdout_splits

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")
"""File endings read as images (case-insensitive); other files in class folders are ignored."""
CROP_RATIO = 0.875
"""Default image_size / resize_size (224 / 256)."""


def load_image(path: Path, image_size: int, resize_size: int) -> Tensor:
    """Decode `path`, resize its shorter side to `resize_size`, center-crop: float32 `[3, S, S]` in [0, 1]."""
    try:
        with Image.open(path) as file:
            image = file.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise ValueError(f"cannot decode image {path}: {err}; remove or replace the file") from err
    width, height = image.size
    scale = resize_size / min(width, height)
    size = (max(image_size, round(width * scale)), max(image_size, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - image_size) // 2, (size[1] - image_size) // 2
    image = image.crop((left, top, left + image_size, top + image_size))
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy())
    return rearrange(pixels, "h w c -> c h w").float().div(255.0)


class FolderImages:
    """Image files with their class ids, decoded on access (`ImageSource`)."""

    def __init__(self, paths: list[Path], labels: Tensor, image_size: int, resize_size: int) -> None:
        self.paths, self.labels, self.image_size, self.resize_size = paths, labels, image_size, resize_size

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> Tensor:
        """Image `index` as float32 `[3, S, S]` in [0, 1]."""
        return load_image(self.paths[index], self.image_size, self.resize_size)


def class_folders(folder: Path) -> tuple[str, ...]:
    """Sorted names of the sub-folders of `folder` (the classes)."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"image folder {folder} does not exist; expected <root>/<split>/<class>/<image> folders"
        )
    names = tuple(sorted(entry.name for entry in os.scandir(folder) if entry.is_dir()))
    if not names:
        raise FileNotFoundError(
            f"{folder} has no class sub-folders; images must sit in <split>/<class>/ folders (ImageNet's "
            "flat val folder must be sorted into class folders first)"
        )
    return names


def scan_split(
    folder: Path, classes: tuple[str, ...], require_every_class: bool
) -> tuple[list[Path], Tensor]:
    """Image paths (sorted within each class) and their class ids `[N]` under `folder/<class>/`."""
    found = class_folders(folder)
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise ValueError(f"{folder} has class folders {unknown[:5]} that the train folder lacks")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        files = sorted(
            entry.name
            for entry in (os.scandir(class_dir) if class_dir.is_dir() else ())
            if entry.is_file() and entry.name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not files and require_every_class:
            raise FileNotFoundError(
                f"class folder {class_dir} has no image files (endings {IMAGE_EXTENSIONS})"
            )
        paths += [class_dir / file for file in files]
        labels += [label] * len(files)
    if not paths:
        raise FileNotFoundError(f"{folder} holds no image files (endings {IMAGE_EXTENSIONS})")
    return paths, torch.tensor(labels, dtype=torch.long)


def read_subset_file(path: Path) -> list[str]:
    """File names listed in a subset file, one per line (blank lines skipped)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"subset_file {path} does not exist; it lists one train image file name per line"
        )
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ValueError(f"subset_file {path} lists no file names")
    return names


class ImageFolderDataModule(ImageDataModule):
    """Images of `root/<train_dir>/<class>/*` and `root/<val_dir>/<class>/*`.

    Args:
        root: folder holding the split folders.
        train_dir: train split folder name under root.
        val_dir: evaluation folder name under root (served as "test", and as "valid" when
            `val_fraction` is 0).
        image_size: side S of the served center crops.
        resize_size: shorter-side size before the crop (default round(S / 0.875): 256 for 224).
        batch_size: images per batch.
        num_workers: DataLoader workers (JPEG decoding needs several on real data).
        label_fraction: class-balanced share of the train labels to keep (0.01, 0.1; None: all).
        seed: seeds the valid hold-out, the label subset and the training shuffle.
        val_fraction: class-balanced share of the train folder held out as "valid" (0: valid = val folder).
        subset_file: text file naming the train images that keep their labels, one `<file>` or
            `<class>/<file>` per line, instead of `label_fraction` (e.g. SimCLR's ImageNet `1percent.txt`).
    """

    def __init__(
        self,
        root: str,
        train_dir: str = "train",
        val_dir: str = "val",
        image_size: int = 224,
        resize_size: int | None = None,
        batch_size: int = 256,
        num_workers: int = 0,
        label_fraction: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.0,
        subset_file: str | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, label_fraction)
        self.save_hyperparameters()
        for name, value in (("image_size", image_size), ("resize_size", resize_size)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ValueError(f"ImageFolderDataModule: {name} must be a positive int, got {value!r}")
        self.resize_size = resize_size or round(image_size / CROP_RATIO)
        if self.resize_size < image_size:
            raise ValueError(
                f"ImageFolderDataModule: resize_size {resize_size} is below image_size {image_size}"
            )
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, int | float)
            or not 0 <= val_fraction < 1
        ):
            raise ValueError(f"ImageFolderDataModule: val_fraction must lie in [0, 1), got {val_fraction!r}")
        if subset_file is not None and label_fraction is not None:
            raise ValueError("ImageFolderDataModule: give label_fraction or subset_file, not both")
        self.root, self.image_size, self.val_fraction = Path(root).expanduser(), image_size, val_fraction
        self._classes: tuple[str, ...] | None = None

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names: the train folder's sub-folders, sorted."""
        if self._classes is None:
            self._classes = class_folders(self.root / self.hparams.train_dir)
        return self._classes

    @property
    def num_classes(self) -> int:
        """Number of class folders in the train folder."""
        return len(self.classes)

    def load_splits(self) -> SplitSources:
        """Scan the folders; hold out `val_fraction` of train as valid (valid = val folder when 0)."""
        train, test = (
            FolderImages(
                *scan_split(
                    self.root / folder, self.classes, require_every_class=folder == self.hparams.train_dir
                ),
                self.image_size,
                self.resize_size,
            )
            for folder in (self.hparams.train_dir, self.hparams.val_dir)
        )
        return holdout_splits(train, test, self.val_fraction, self.seed)

    def labelled_subset(self, source: ImageSource, indices: Tensor) -> Tensor:
        """The train images named in `subset_file`, else the `label_fraction` subset."""
        if self.hparams.subset_file is None:
            return super().labelled_subset(source, indices)
        path = Path(self.hparams.subset_file).expanduser()
        wanted = list(dict.fromkeys(read_subset_file(path)))
        relative = [f"{source.paths[int(i)].parent.name}/{source.paths[int(i)].name}" for i in indices]
        by_name: dict[str, list[int]] = {}
        for position, name in enumerate(relative):
            by_name.setdefault(name, []).append(position)
            by_name.setdefault(name.rsplit("/", 1)[1], []).append(position)
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise ValueError(
                f"{len(missing)} name(s) of {path} are not train images, e.g. {missing[:3]}; names are "
                "'<file>' or '<class>/<file>' (held-out valid images with val_fraction > 0 are excluded)"
            )
        ambiguous = [name for name in wanted if len(by_name[name]) > 1]
        if ambiguous:
            raise ValueError(
                f"{path} names files found in several class folders, e.g. {ambiguous[:3]}; write them as "
                "'<class>/<file>'"
            )
        return indices[torch.tensor(sorted(by_name[name][0] for name in wanted), dtype=torch.long)]
