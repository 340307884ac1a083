"""CIFAR-100 and CIFAR-10 from their canonical python-pickle folders (Krizhevsky, 2009).

Layouts (what `tar xzf cifar-100-python.tar.gz` / `cifar-10-python.tar.gz` unpack; the same files
and keys torchvision's `CIFAR100` / `CIFAR10` read):

    cifar-100-python/{train, test, meta}
    cifar-10-batches-py/{data_batch_1, ..., data_batch_5, test_batch, batches.meta}

Each data file is a pickled dict with `data`: uint8 [N, 3072] (per image the 1024 red, then green,
then blue pixels of the 32x32 image, rows first) and the labels: `fine_labels` and `coarse_labels`
(CIFAR-100, 100 classes / 20 superclasses) or `labels` (CIFAR-10). The meta file holds the class
names under `fine_label_names` / `coarse_label_names` or `label_names`. The files were written by
Python 2, so the keys may load as bytes or str; both are accepted.

The pickles are loaded with `pickle`, which can run code: read only files from the official archive.
Splits: "train" (the train files), "test" (the test file), and "valid": a class-balanced
`val_fraction` of the train files held out, or the test set when `val_fraction` is 0 (the paper's
protocol, the default).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from einops import rearrange
from torch import Tensor

from ssl_lightning.data.image.datamodule import ImageDataModule, SplitSources, TensorImages, holdout_splits

CIFAR_SIZE = 32
PIXELS = 3 * CIFAR_SIZE * CIFAR_SIZE


@dataclass(frozen=True)
class CifarLayout:
    """File names and pickle keys of one CIFAR variant; `labels`: label kind -> (label key, names key)."""

    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels: dict[str, tuple[str, str]]
    num_classes: dict[str, int]
    url: str


CIFAR100 = CifarLayout(
    folder="cifar-100-python",
    train_files=("train",),
    test_files=("test",),
    meta_file="meta",
    labels={"fine": ("fine_labels", "fine_label_names"), "coarse": ("coarse_labels", "coarse_label_names")},
    num_classes={"fine": 100, "coarse": 20},
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
)
CIFAR10 = CifarLayout(
    folder="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_files=("test_batch",),
    meta_file="batches.meta",
    labels={"fine": ("labels", "label_names")},
    num_classes={"fine": 10},
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
)


def find_cifar_folder(root: str | Path, layout: CifarLayout) -> Path:
    """The folder holding the layout's files: `root` itself or `root/<layout.folder>`."""
    root = Path(root).expanduser()
    for folder in (root / layout.folder, root):
        if (folder / layout.meta_file).is_file():
            missing = [
                name for name in (*layout.train_files, *layout.test_files) if not (folder / name).is_file()
            ]
            if missing:
                raise FileNotFoundError(
                    f"{folder} lacks {missing}; re-extract {layout.url.rsplit('/', 1)[1]} (from {layout.url})"
                )
            return folder
    raise FileNotFoundError(
        f"no {layout.folder}/{layout.meta_file} under {root} (nor {root / layout.meta_file}); download "
        f"{layout.url} and run `tar xzf {layout.url.rsplit('/', 1)[1]} -C {root}`, or point root at the "
        f"extracted {layout.folder} folder"
    )


def _load_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with str keys (Python 2 pickles: bytes keys are decoded)."""
    try:
        with path.open("rb") as f:
            content = pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, ValueError, AttributeError, ImportError) as err:
        raise ValueError(
            f"{path} is not a readable CIFAR pickle ({err}); re-extract the official archive"
        ) from err
    if not isinstance(content, dict):
        raise ValueError(
            f"{path} holds a {type(content).__name__}, expected the pickled dict of a CIFAR file"
        )
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def _entry(content: dict[str, Any], key: str, path: Path) -> Any:
    if key not in content:
        raise KeyError(
            f"{path} has no key {key!r} (its keys: {sorted(content)}); is this the right CIFAR variant?"
        )
    return content[key]


def read_cifar_file(path: Path, label_key: str, num_classes: int) -> tuple[Tensor, Tensor]:
    """One data file: `(images uint8 [N, 3, 32, 32], labels int64 [N])`."""
    content = _load_pickle(path)
    data = np.asarray(_entry(content, "data", path))
    labels = np.asarray(_entry(content, label_key, path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        raise ValueError(f"{path}: 'data' must be uint8 [N, {PIXELS}], got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: {label_key!r} must hold {data.shape[0]} integer labels, got {labels.dtype} "
            f"{labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{path}: {label_key!r} spans [{labels.min()}, {labels.max()}], outside [0, {num_classes})"
        )
    images = rearrange(torch.from_numpy(data.copy()), "n (c h w) -> n c h w", c=3, h=CIFAR_SIZE)
    return images, torch.from_numpy(labels.astype(np.int64))


def read_cifar_names(folder: Path, layout: CifarLayout, label_kind: str) -> tuple[str, ...]:
    """The class names of `label_kind` from the meta file, in label order."""
    path = folder / layout.meta_file
    names = tuple(
        name.decode("latin1") if isinstance(name, bytes) else str(name)
        for name in _entry(_load_pickle(path), layout.labels[label_kind][1], path)
    )
    if len(names) != layout.num_classes[label_kind]:
        raise ValueError(f"{path} lists {len(names)} class names, expected {layout.num_classes[label_kind]}")
    return names


def read_cifar_split(
    folder: Path, files: tuple[str, ...], layout: CifarLayout, label_kind: str
) -> tuple[Tensor, Tensor]:
    """The data files `files` concatenated: `(images uint8 [N, 3, 32, 32], labels int64 [N])`."""
    label_key, num_classes = layout.labels[label_kind][0], layout.num_classes[label_kind]
    parts = [read_cifar_file(folder / name, label_key, num_classes) for name in files]
    return torch.cat([images for images, _ in parts]), torch.cat([labels for _, labels in parts])


class CifarDataModule(ImageDataModule):
    """A CIFAR variant (`layout`) read from its pickle folder; subclasses fix the variant.

    Args:
        root: the extracted `cifar-100-python` / `cifar-10-batches-py` folder, or its parent.
        batch_size: images per batch.
        num_workers: DataLoader workers.
        label_fraction: class-balanced share of the train labels to keep (0.01, 0.1; None: all).
        seed: seeds the valid hold-out, the label subset and the training shuffle.
        val_fraction: class-balanced share of the train set held out as "valid" (0: valid = test).
        image_size: side of the served images (32: native; other sizes are resized bilinearly).
        label_kind: "fine" (100 classes) or "coarse" (20 superclasses) for CIFAR-100.
    """

    layout: CifarLayout

    def __init__(
        self,
        root: str,
        batch_size: int,
        num_workers: int,
        label_fraction: float | None,
        seed: int,
        val_fraction: float,
        image_size: int,
        label_kind: str,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, label_fraction)
        name = type(self).__name__
        if label_kind not in self.layout.labels:
            raise ValueError(f"{name}: labels must be one of {list(self.layout.labels)}, got {label_kind!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
            raise ValueError(f"{name}: image_size must be a positive int, got {image_size!r}")
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, int | float)
            or not 0 <= val_fraction < 1
        ):
            raise ValueError(
                f"{name}: val_fraction must lie in [0, 1) (0: valid = test), got {val_fraction!r}"
            )
        self.root, self.val_fraction, self.image_size, self.label_kind = (
            root,
            val_fraction,
            image_size,
            label_kind,
        )
        self.num_classes = self.layout.num_classes[label_kind]
        self.classes: tuple[str, ...] | None = None

    def load_splits(self) -> SplitSources:
        """Read the pickles; hold out `val_fraction` of train as valid (valid = test when 0)."""
        folder = find_cifar_folder(self.root, self.layout)
        self.classes = read_cifar_names(folder, self.layout, self.label_kind)
        train, test = (
            TensorImages(*read_cifar_split(folder, files, self.layout, self.label_kind), self.image_size)
            for files in (self.layout.train_files, self.layout.test_files)
        )
        return holdout_splits(train, test, self.val_fraction, self.seed)


class CIFAR100DataModule(CifarDataModule):
    """CIFAR-100: 50,000 train and 10,000 test 32x32 images; 100 fine classes or 20 coarse superclasses.

    Args: see `CifarDataModule`; `labels` is "fine" or "coarse".
    """

    layout = CIFAR100

    def __init__(
        self,
        root: str,
        batch_size: int = 512,
        num_workers: int = 0,
        label_fraction: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.0,
        image_size: int = CIFAR_SIZE,
        labels: Literal["fine", "coarse"] = "fine",
    ) -> None:
        super().__init__(
            root, batch_size, num_workers, label_fraction, seed, val_fraction, image_size, labels
        )
        self.save_hyperparameters()


class CIFAR10DataModule(CifarDataModule):
    """CIFAR-10: 50,000 train (5 batch files) and 10,000 test 32x32 images of 10 classes.

    Args: see `CifarDataModule`.
    """

    layout = CIFAR10

    def __init__(
        self,
        root: str,
        batch_size: int = 512,
        num_workers: int = 0,
        label_fraction: float | None = None,
        seed: int = 0,
        val_fraction: float = 0.0,
        image_size: int = CIFAR_SIZE,
    ) -> None:
        super().__init__(
            root, batch_size, num_workers, label_fraction, seed, val_fraction, image_size, "fine"
        )
        self.save_hyperparameters()
