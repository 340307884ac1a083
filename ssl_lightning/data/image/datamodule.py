"""`ImageDataModule`, the shared base of the image datamodules (CIFAR, ImageFolder, digits).

Every image datamodule serves batches `{"image": float32 [B, C, H, W] in [0, 1], "label": int64 [B]}`
(docs/architecture.md), plus `clip_id` (the sample's index in its source file or folder) from
`subclip_dataloader`, so frozen-feature probes treat each image as a one-sub-clip clip. Views and
augmentations are made on device by the methods, so loading is a fixed decode (and resize).

`ImageDataModule` holds what they share: argument checks, the splits "train" / "valid" / "test",
the class-balanced `label_fraction` subset of the train split (`label_subsets.py`), and the loaders.
A subclass implements `load_splits()`.
"""

from __future__ import annotations

from typing import Protocol

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssl_lightning.data.label_subsets import check_fraction, label_fraction_subset
from ssl_lightning.data.resumable import ResumableDataLoader, TrainLoaderState

SPLITS = ("train", "valid", "test")


class ImageSource(Protocol):
    """The images of one file or folder: `labels` [N] int64, `image(index)` -> float [C, H, W] in [0, 1]."""

    labels: Tensor

    def __len__(self) -> int: ...

    def image(self, index: int) -> Tensor: ...


class TensorImages:
    """Images held in memory: uint8 `[N, C, H, W]` (scaled by 1/255) or float `[N, C, H, W]` in [0, 1].

    With `image_size` S, an image of another size is resized to `[C, S, S]` (bilinear, antialiased)
    when it is read.
    """

    def __init__(self, images: Tensor, labels: Tensor, image_size: int | None = None) -> None:
        if images.ndim != 4 or labels.shape != images.shape[:1]:
            raise ValueError(
                f"TensorImages needs [N, C, H, W] images and [N] labels, got {tuple(images.shape)} and "
                f"{tuple(labels.shape)}"
            )
        self.images, self.labels, self.image_size = images, labels.long(), image_size

    def __len__(self) -> int:
        return self.images.shape[0]

    def image(self, index: int) -> Tensor:
        """Image `index` as float32 `[C, S, S]` in [0, 1]."""
        image = self.images[index]
        image = image.float() if image.is_floating_point() else image.float().div(255.0)
        size = self.image_size
        if size is None or image.shape[-2:] == (size, size):
            return image
        resized = F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)
        return resized[0].clamp(0.0, 1.0)


class ImageDataset(Dataset):
    """Items `{"image": [C, H, W], "label": int64 scalar}` (+ `clip_id` when `with_clip_id`) of the
    samples `indices` of `source`; `clip_id` is the index in `source`."""

    def __init__(self, source: ImageSource, indices: Tensor, with_clip_id: bool = False) -> None:
        self.source, self.indices, self.with_clip_id = source, indices, with_clip_id

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        source_index = int(self.indices[index])
        item = {"image": self.source.image(source_index), "label": self.source.labels[source_index]}
        if self.with_clip_id:
            item["clip_id"] = self.indices[index]
        return item


def stratified_split(
    labels: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> dict[str, Tensor]:
    """Sample indices per split (sorted), stratified by label and seeded: `{"train", "valid", "test"}`."""
    indices = np.arange(labels.shape[0])
    train_fraction, valid_fraction, test_fraction = fractions
    train, rest = train_test_split(
        indices, train_size=train_fraction, stratify=labels, random_state=seed, shuffle=True
    )
    valid, test = train_test_split(
        rest,
        test_size=test_fraction / (valid_fraction + test_fraction),
        stratify=labels[rest],
        random_state=seed,
        shuffle=True,
    )
    return {
        name: torch.from_numpy(np.sort(part)) for name, part in zip(SPLITS, (train, valid, test), strict=True)
    }


SplitSources = dict[str, tuple[ImageSource, Tensor]]
"""Each split's source and the sorted indices of its samples in that source."""


def holdout_splits(train: ImageSource, test: ImageSource, val_fraction: float, seed: int) -> SplitSources:
    """Splits of a data set shipped as a train and a test set.

    With `val_fraction` > 0, a class-balanced seeded share of the train set (`label_fraction_subset`)
    becomes "valid" and the rest "train"; with 0, "train" is the whole train set and "valid" serves
    the test set (the papers' protocol: no validation split, results on the test set).
    """
    everything = torch.arange(len(train))
    if val_fraction == 0:
        return {
            "train": (train, everything),
            "valid": (test, torch.arange(len(test))),
            "test": (test, torch.arange(len(test))),
        }
    valid = label_fraction_subset(train.labels, val_fraction, seed)
    kept = torch.ones(len(train), dtype=torch.bool)
    kept[valid] = False
    return {
        "train": (train, everything[kept]),
        "valid": (train, valid),
        "test": (test, torch.arange(len(test))),
    }


class ImageDataModule(TrainLoaderState, L.LightningDataModule):
    """Base of the image datamodules: splits, the label-fraction subset of "train", loaders.

    Subclasses call `super().__init__(...)` then `self.save_hyperparameters()`, implement
    `load_splits()` and provide `num_classes` and `classes` (after `setup` at the latest).

    Args:
        batch_size: images per batch.
        num_workers: DataLoader workers.
        seed: seeds the label subset and the training shuffle (and a subclass's splits).
        label_fraction: keep this class-balanced share of the train labels (0.01 for "1% labels";
            see `label_subsets.py`); None keeps them all. valid and test are never reduced.
    """

    label_type = "single"

    def __init__(self, batch_size: int, num_workers: int, seed: int, label_fraction: float | None) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"{name}: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"{name}: num_workers must be an int >= 0, got {num_workers!r}")
        check_fraction(label_fraction, f"{name}: label_fraction")
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.label_fraction = label_fraction
        self.sources: dict[str, ImageSource] = {}
        self.split_indices: dict[str, Tensor] | None = None

    def load_splits(self) -> SplitSources:
        """Read the data: each split's source and the indices of its samples (before `label_fraction`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_splits()")

    def labelled_subset(self, source: ImageSource, indices: Tensor) -> Tensor:
        """The train samples that keep their labels: `indices[label_fraction_subset(...)]`."""
        return indices[label_fraction_subset(source.labels[indices], self.label_fraction, self.seed)]

    def setup(self, stage: str | None = None) -> None:
        """Load the splits and draw the label subset (once)."""
        if self.split_indices is not None:
            return
        splits = self.load_splits()
        train_source, train_indices = splits["train"]
        splits["train"] = (train_source, self.labelled_subset(train_source, train_indices))
        self.sources = {split: source for split, (source, _) in splits.items()}
        self.split_indices = {split: indices for split, (_, indices) in splits.items()}

    def with_label_fraction(self, fraction: float | None) -> ImageDataModule:
        """A new datamodule of the same class and arguments but `label_fraction=fraction` (not set up)."""
        return type(self)(**{**self.hparams, "label_fraction": fraction})

    def dataset(self, split: str, with_clip_id: bool = False) -> ImageDataset:
        """The images of `split` ("train", "valid" or "test")."""
        if self.split_indices is None:
            raise RuntimeError(
                f"{type(self).__name__}.setup() must run before asking for a dataset or loader"
            )
        if split not in self.split_indices:
            raise ValueError(
                f"{type(self).__name__} has no split {split!r}; its splits: {list(self.split_indices)}"
            )
        return ImageDataset(self.sources[split], self.split_indices[split], with_clip_id)

    def _loader(self, dataset: ImageDataset, batch_size: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> ResumableDataLoader:
        """Train images (the labelled subset when `label_fraction` is set) in a `(seed, epoch)` shuffle
        that a resumed fit continues exactly."""
        return self.resumable_train_loader(self.dataset("train"))

    def val_dataloader(self) -> DataLoader:
        """Valid images in index order."""
        return self._loader(self.dataset("valid"), self.batch_size)

    def test_dataloader(self) -> DataLoader:
        """Test images in index order."""
        return self._loader(self.dataset("test"), self.batch_size)

    def subclip_dataloader(self, split: str, batch_size: int | None = None) -> DataLoader:
        """Images of `split` in index order with `clip_id` (one "sub-clip" per image), for probes."""
        return self._loader(self.dataset(split, with_clip_id=True), batch_size or self.batch_size)
