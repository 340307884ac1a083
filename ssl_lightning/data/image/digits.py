"""`DigitsDataModule`, the embedded image default: scikit-learn's bundled 8x8 handwritten digits,
1797 grey images of 10 classes (no download), upsampled bilinearly to `image_size` and repeated to
3 channels; `clip_id` is the sample's index in `load_digits()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import repeat
from sklearn.datasets import load_digits
from torch import Tensor

from ssl_lightning.data.image.datamodule import ImageDataModule, SplitSources, TensorImages, stratified_split

MAX_PIXEL = 16.0
"""load_digits() pixel values are integers 0..16."""


def digits_images(image_size: int) -> tuple[Tensor, Tensor]:
    """All of `load_digits()`: `(images float32 [1797, 3, S, S] in [0, 1], labels int64 [1797])`."""
    digits = load_digits()
    grey = torch.from_numpy(digits.images).float().div(MAX_PIXEL)[:, None]
    resized = F.interpolate(grey, size=(image_size, image_size), mode="bilinear", align_corners=False)
    images = repeat(resized.clamp(0.0, 1.0), "n 1 h w -> n c h w", c=3).contiguous()
    return images, torch.from_numpy(digits.target).long()


class DigitsDataModule(ImageDataModule):
    """The digits images, split 70/15/15 (stratified, seeded by `seed`).

    Args:
        batch_size: images per batch.
        num_workers: DataLoader workers.
        image_size: side S of the served square images (bilinear upsampling from 8x8).
        seed: seed of the split, of the label subset and of the training shuffle.
        split_fractions: train/valid/test fractions (sum 1).
        label_fraction: class-balanced share of the train labels to keep (None: all).
    """

    num_classes = 10
    classes = tuple(str(digit) for digit in range(10))

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        image_size: int = 32,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
        label_fraction: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, seed, label_fraction)
        self.save_hyperparameters()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0:
            raise ValueError(f"DigitsDataModule: image_size must be a positive int, got {image_size!r}")
        if len(split_fractions) != 3 or min(split_fractions) <= 0 or abs(sum(split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"DigitsDataModule: split_fractions must be 3 positive train/valid/test fractions "
                f"summing to 1, got {split_fractions!r}"
            )
        self._images: Tensor | None = None
        self._labels: Tensor | None = None

    def load_splits(self) -> SplitSources:
        """Load and resize all digits, then split them 70/15/15."""
        self._images, self._labels = digits_images(self.hparams.image_size)
        source = TensorImages(self._images, self._labels)
        indices = stratified_split(self._labels.numpy(), tuple(self.hparams.split_fractions), self.seed)
        return {split: (source, ids) for split, ids in indices.items()}
