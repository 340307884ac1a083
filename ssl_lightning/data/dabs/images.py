"""DABS natural images (Tamkin et al. 2021, `src/datasets/natural_images/`): batches
`{"image": float32 [B, 3, S, S] in [0, 1], "label": int64 [B], "clip_id": int64 [B]}`.

DABS preprocesses every image set the same way, in training and evaluation alike (no augmentation, no
mean/std normalisation): `Resize((S, S))` (PIL bilinear, both sides, so the aspect ratio is not kept),
`CenterCrop((S, S))` (then a no-op) and `ToTensor()`. The full variants use S = 224 with 16 x 16 patches
(196 tokens), the `_small` ones S = 32 with 4 x 4 patches (64 tokens); `small` picks between them. DABS
has no validation split: it trains on the `train=True` set and reports on the `train=False` one, so
"valid" serves the test set unless `val_fraction` holds out part of train.

- `DabsDigitsDataModule`: the embedded default, scikit-learn's 8 x 8 digits as `_small`-style 3 x 32 x 32
  images (`DigitsDataModule`'s images and split; not a DABS data set).
- `DabsCIFAR10DataModule`: CIFAR-10 (DABS transfer set `cifar10` / `cifar10_small`) from the python-pickle
  folder that `CIFAR10DataModule` reads.
"""

from __future__ import annotations

import torch
from einops import rearrange
from PIL import Image
from torch import Tensor
from torchvision import transforms

from ssl_lightning.data.dabs.base import DabsDataModule, Mode
from ssl_lightning.data.image.cifar import CIFAR10, find_cifar_folder, read_cifar_names, read_cifar_split
from ssl_lightning.data.image.datamodule import (
    ImageDataset,
    SplitSources,
    TensorImages,
    holdout_splits,
    stratified_split,
)
from ssl_lightning.data.image.digits import DigitsDataModule, digits_images
from ssl_lightning.nn.input_specs import InputSpec

FULL, SMALL = (224, 16), (32, 4)
"""(image side S, patch side) of DABS's full and `_small` image variants."""


def dabs_transform(size: int) -> transforms.Compose:
    """DABS's image transform: PIL RGB image -> float32 `[3, size, size]` in [0, 1]."""
    return transforms.Compose(
        [transforms.Resize((size, size)), transforms.CenterCrop((size, size)), transforms.ToTensor()]
    )


class DabsImages:
    """uint8 RGB images `[N, 3, h, w]` and labels `[N]`, each served through `dabs_transform(size)` (an
    `ImageSource`)."""

    def __init__(self, images: Tensor, labels: Tensor, size: int) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"DabsImages needs uint8 [N, 3, h, w] images, got {images.dtype} {tuple(images.shape)}"
            )
        self.images, self.labels, self.transform = images, labels.long(), dabs_transform(size)

    def __len__(self) -> int:
        return self.images.shape[0]

    def image(self, index: int) -> Tensor:
        """Image `index` as float32 `[3, S, S]` in [0, 1]."""
        return self.transform(Image.fromarray(rearrange(self.images[index], "c h w -> h w c").numpy()))


class DabsImageDataModule(DabsDataModule):
    """Base of the DABS image datamodules: one `"image"` input of S x S pixels, single-label classes.
    Both views ("random_crop", "subclips") are the same DABS transform. Subclasses implement
    `load_sources()` and set `classes` there (or as a class attribute).

    Args:
        small: the `_small` variant (32 x 32, 4 x 4 patches) instead of the full one (224 x 224, 16 x 16).
        batch_size, num_workers, seed: see `DabsDataModule`.
    """

    label_type = "single"

    def __init__(
        self, small: bool, batch_size: int, num_workers: int, seed: int, val_fraction: float = 0.0
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        if (
            isinstance(val_fraction, bool)
            or not isinstance(val_fraction, int | float)
            or not 0 <= val_fraction < 1
        ):
            raise ValueError(
                f"{type(self).__name__}: val_fraction must lie in [0, 1) (0: valid = test), got "
                f"{val_fraction!r}"
            )
        self.image_size, self.patch_size = SMALL if small else FULL
        self.val_fraction = val_fraction
        self._sources: SplitSources = {}

    @property
    def input_specs(self) -> list[InputSpec]:
        """One 2d input: `InputSpec("image", "2d", (S, S), patch, 3)`."""
        return [InputSpec("image", "2d", (self.image_size, self.image_size), self.patch_size, 3)]

    def load_sources(self) -> SplitSources:
        """Each split's image source and the indices of its images."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_sources()")

    def load(self) -> None:
        """Read the images of every split."""
        self._sources = self.load_sources()

    def make_dataset(self, split: str, mode: Mode) -> ImageDataset:
        """`{"image", "label"}` items of `split` (the same transform for both modes, as DABS)."""
        return ImageDataset(*self._sources[split])


class DabsDigitsDataModule(DabsImageDataModule):
    """Embedded default: scikit-learn's 1797 8 x 8 digits (10 classes), upsampled bilinearly to 32 x 32 and
    repeated to 3 channels (the `_small` image spec, 64 tokens), split 70/15/15 stratified and seeded
    exactly as `DigitsDataModule` (`seed`).

    Args:
        batch_size: images per batch (DABS uses 256 for `_small` images).
        num_workers: DataLoader workers.
        seed: seed of the split, the training shuffle and draws.
        split_fractions: train/valid/test fractions (sum 1).
    """

    classes = DigitsDataModule.classes
    canonical = False

    def __init__(
        self,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    ) -> None:
        super().__init__(True, batch_size, num_workers, seed)
        self.save_hyperparameters()
        if len(split_fractions) != 3 or min(split_fractions) <= 0 or abs(sum(split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"DabsDigitsDataModule: split_fractions must be 3 positive train/valid/test fractions "
                f"summing to 1, got {split_fractions!r}"
            )
        self.split_fractions = tuple(split_fractions)

    @property
    def split_note(self) -> str:
        """Where the splits come from."""
        shares = "/".join(f"{round(100 * share)}" for share in self.split_fractions)
        return (
            f"scikit-learn digits (not a DABS data set): stratified {shares} train/valid/test split, "
            f"seed {self.seed} (DigitsDataModule's)"
        )

    def load_sources(self) -> SplitSources:
        """All digits at 32 x 32, split as `DigitsDataModule`."""
        images, labels = digits_images(self.image_size)
        source = TensorImages(images, labels)
        indices = stratified_split(labels.numpy(), self.split_fractions, self.seed)
        return {split: (source, ids) for split, ids in indices.items()}


class DabsCIFAR10DataModule(DabsImageDataModule):
    """CIFAR-10 as DABS serves it (`cifar10`, `cifar10_small`): the 50,000 train images (5 batch files)
    and the 10,000 of `test_batch`, 10 classes, through DABS's transform (32 x 32 images are kept as they
    are for `small`, upsampled to 224 x 224 otherwise).

    Args:
        root: the extracted `cifar-10-batches-py` folder, or its parent (download
            https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz).
        small: `cifar10_small` (32 x 32, 4 x 4 patches; the default) or `cifar10` (224 x 224, 16 x 16).
        batch_size: images per batch (DABS: 256 for `_small`, 64 for the full size).
        num_workers: DataLoader workers.
        seed: seed of the valid hold-out, the training shuffle and draws.
        val_fraction: class-balanced share of train held out as "valid"; 0 (DABS: no validation split):
            "valid" serves the test set.
    """

    def __init__(
        self,
        root: str,
        small: bool = True,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        val_fraction: float = 0.0,
    ) -> None:
        super().__init__(small, batch_size, num_workers, seed, val_fraction)
        self.save_hyperparameters()
        self.root = root
        self.classes: tuple[str, ...] = ()

    @property
    def canonical(self) -> bool:
        """True when train and test are DABS's (no hold-out taken from train)."""
        return self.val_fraction == 0

    @property
    def split_note(self) -> str:
        """Where the splits come from."""
        if self.canonical:
            return (
                "CIFAR-10 data_batch_1-5 (train) and test_batch (test; valid = test: DABS has no valid split)"
            )
        return (
            f"CIFAR-10 data_batch_1-5 less a class-balanced {self.val_fraction} held out as valid (seed "
            f"{self.seed}; not DABS's: DABS trains on all of them), test_batch as test"
        )

    def load_sources(self) -> SplitSources:
        """Read the pickles; hold out `val_fraction` of train as valid (valid = test when 0)."""
        folder = find_cifar_folder(self.root, CIFAR10)
        self.classes = read_cifar_names(folder, CIFAR10, "fine")
        train, test = (
            DabsImages(*read_cifar_split(folder, files, CIFAR10, "fine"), self.image_size)
            for files in (CIFAR10.train_files, CIFAR10.test_files)
        )
        return holdout_splits(train, test, self.val_fraction, self.seed)
