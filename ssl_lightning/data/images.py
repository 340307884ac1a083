"""`DigitsDataModule`: scikit-learn's bundled 8x8 handwritten digits as a small image benchmark.

1797 grey images of 10 classes, shipped with scikit-learn (no download), upsampled bilinearly to
`image_size` and repeated to 3 channels with values in [0, 1]. Batches follow docs/architecture.md:
`{"image": float32 [B, 3, H, W], "label": int64 [B]}`, plus `clip_id` (the sample's index in
`load_digits()`) from `subclip_dataloader`, so frozen-feature probes can use it like an audio task.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from einops import repeat
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

SPLITS = ("train", "valid", "test")
MAX_PIXEL = 16.0
"""load_digits() pixel values are integers 0..16."""


class ImageDataset(Dataset):
    """Items `{"image": [C, H, W], "label": int64 scalar}` (+ `clip_id` when `with_clip_id`)."""

    def __init__(self, images: Tensor, labels: Tensor, ids: Tensor, with_clip_id: bool = False) -> None:
        self.images, self.labels, self.ids, self.with_clip_id = images, labels, ids, with_clip_id

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = {"image": self.images[index], "label": self.labels[index]}
        if self.with_clip_id:
            item["clip_id"] = self.ids[index]
        return item


def digits_images(image_size: int) -> tuple[Tensor, Tensor]:
    """All of `load_digits()`: `(images float32 [1797, 3, S, S] in [0, 1], labels int64 [1797])`."""
    digits = load_digits()
    grey = torch.from_numpy(digits.images).float().div(MAX_PIXEL)[:, None]
    resized = F.interpolate(grey, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = repeat(resized.clamp(0.0, 1.0), "n 1 h w -> n c h w", c=3).contiguous()
    return images, torch.from_numpy(digits.target).long()


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


class DigitsDataModule(L.LightningDataModule):
    """The digits images, split 70/15/15 (stratified, seeded by `seed`).

    Args:
        batch_size: images per batch.
        num_workers: DataLoader workers.
        image_size: side S of the served square images (bilinear upsampling from 8x8).
        seed: seed of the split and of the training shuffle.
        split_fractions: train/valid/test fractions (sum 1).
    """

    num_classes = 10
    label_type = "single"
    classes = tuple(str(digit) for digit in range(10))

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for name, value in (("batch_size", batch_size), ("image_size", image_size)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"DigitsDataModule: {name} must be a positive int, got {value!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"DigitsDataModule: num_workers must be an int >= 0, got {num_workers!r}")
        if len(split_fractions) != 3 or min(split_fractions) <= 0 or abs(sum(split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"DigitsDataModule: split_fractions must be 3 positive train/valid/test fractions "
                f"summing to 1, got {split_fractions!r}"
            )
        self.split_indices: dict[str, Tensor] | None = None
        self._images: Tensor | None = None
        self._labels: Tensor | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load, resize and split the images (once)."""
        if self.split_indices is not None:
            return
        self._images, self._labels = digits_images(self.hparams.image_size)
        self.split_indices = stratified_split(
            self._labels.numpy(), tuple(self.hparams.split_fractions), self.hparams.seed
        )

    def dataset(self, split: str, with_clip_id: bool = False) -> ImageDataset:
        """The images of `split` ("train", "valid" or "test")."""
        if self.split_indices is None:
            raise RuntimeError("DigitsDataModule.setup() must run before asking for a dataset or loader")
        if split not in self.split_indices:
            raise ValueError(f"DigitsDataModule has no split {split!r}; its splits: {list(SPLITS)}")
        ids = self.split_indices[split]
        return ImageDataset(self._images[ids], self._labels[ids], ids, with_clip_id)

    def _loader(self, dataset: ImageDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=workers,
            generator=torch.Generator().manual_seed(self.hparams.seed),
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled train images."""
        return self._loader(self.dataset("train"), self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Valid images in index order."""
        return self._loader(self.dataset("valid"), self.hparams.batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """Test images in index order."""
        return self._loader(self.dataset("test"), self.hparams.batch_size, shuffle=False)

    def subclip_dataloader(self, split: str, batch_size: int | None = None) -> DataLoader:
        """Images of `split` in index order with `clip_id` (one "sub-clip" per image), for probes."""
        return self._loader(
            self.dataset(split, with_clip_id=True), batch_size or self.hparams.batch_size, shuffle=False
        )
