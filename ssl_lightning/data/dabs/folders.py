"""DABS natural images from ImageNet-style class folders `<root>/<split>/<class>/<image>`: batches
`{"image": float32 [B, 3, S, S] in [0, 1], "label": int64 [B], "clip_id": int64 [B]}` through DABS's image
transform (`images.py`: `Resize((S, S))`, `CenterCrop`, `ToTensor`; S = 224 / 16 x 16 patches, or the
`_small` 32 / 4 x 4), for DABS's ImageNet pre-training and its folder-shaped transfer sets.

How DABS 1.0 (`src/datasets/natural_images/*.py`, commit 7ee9a71) splits each set, and what makes class
folders of it (class folders sort by name, so name them so that they sort in DABS's label order):

- ImageNet (pre-training): `torchvision.datasets.ImageFolder` on `train/` and `validation/` (1000 synset
  folders): plain class folders (`test_dir="validation"`; ImageNet's flat val folder must be sorted into
  synset folders first).
- CUB-200-2011 (`cu_birds`, 200 classes): `CUB_200_2011/images/<class>/` are class folders already, but the
  split is `train_test_split.txt` (`<image id> 1` train, `0` test; ids to paths in `images.txt`):
  link each image into `train/` or `test/` by it. Labels are `image_class_labels.txt` - 1, which is the
  sorted order of the `001.Black_footed_Albatross` ... folder names.
- VGG Flowers (`vgg_flower`, 102 classes): one flat `jpg/` folder, labels in `imagelabels.mat`; DABS splits
  each class 80/20 after a `numpy.random.RandomState(42)` shuffle per class (classes in order of first
  appearance, one generator for all): a conversion step must reproduce that shuffle. Name folders with
  zero-padded label numbers (`001` ... `102`).
- DTD (`dtd`, 47 classes): `dtd/images/<class>/` class folders; split files `dtd/labels/train1.txt` +
  `val1.txt` (train) and `test1.txt` (test), `<class>/<file>` per line: link the listed files into `train/`
  and `test/`. Labels are the sorted class names, as here.
- Traffic Sign (`traffic_sign`, GTSRB, 43 classes): `GTSRB/Final_Training/Images/00000` ... `00042` class
  folders of `.ppm`; DABS splits each class 80/20 after a `RandomState(42)` shuffle of the `glob` order
  (file-system dependent: not exactly reproducible elsewhere).
- Aircraft (`aircraft`, FGVC-Aircraft 2013b variants): `data/images_variant_trainval.txt` (train) and
  `images_variant_test.txt` (test), `<image> <variant>` per line, flat `data/images/`; DABS crops every
  image to its `data/images_box.txt` box (xmin ymin xmax ymax) before the transform: write the cropped
  images into `train/<variant>/` and `test/<variant>/` (variants contain `/`, e.g. `F-16A/B`: replace it
  in folder names such that the sorted order stays DABS's sorted variant order). Labels are the variants
  sorted (100 of them; DABS 1.0 declares 102 classes).

DABS has no validation split: it trains on train and reports on test, so "valid" serves the test folder
unless `val_fraction` holds out part of train.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torch import Tensor

from ssl_lightning.data.dabs.images import DabsImageDataModule, dabs_transform
from ssl_lightning.data.image.datamodule import SplitSources, holdout_splits
from ssl_lightning.data.image.folder import class_folders, scan_split


class DabsFolderImages:
    """Image files with their class ids `[N]`, decoded through `dabs_transform(size)` (an `ImageSource`)."""

    def __init__(self, paths: list[Path], labels: Tensor, size: int) -> None:
        self.paths, self.labels, self.transform = paths, labels, dabs_transform(size)

    def __len__(self) -> int:
        return len(self.paths)

    def image(self, index: int) -> Tensor:
        """Image `index` as float32 `[3, S, S]` in [0, 1]."""
        path = self.paths[index]
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise ValueError(f"cannot decode image {path}: {err}; remove or replace the file") from err
        return self.transform(image)


class DabsImageFolderDataModule(DabsImageDataModule):
    """Images of `root/<train_dir>/<class>/*` (train) and `root/<test_dir>/<class>/*` (test) as DABS serves
    them; classes are the train folder's sub-folders, sorted. See the module docstring for which DABS sets
    are plain class folders and how to convert the others.

    Args:
        root: folder holding the split folders.
        train_dir: train folder name under root.
        test_dir: test folder name under root (ImageNet as DABS reads it: "validation").
        small: the `_small` variant (32 x 32, 4 x 4 patches) instead of the full one (224 x 224, 16 x 16).
        batch_size: images per batch (DABS: 64 for full-size images, 256 for `_small`).
        num_workers: DataLoader workers (JPEG decoding needs several on real data).
        seed: seed of the valid hold-out, the training shuffle and draws.
        val_fraction: class-balanced share of train held out as "valid"; 0 (DABS: no validation split):
            "valid" serves the test folder.
    """

    def __init__(
        self,
        root: str,
        train_dir: str = "train",
        test_dir: str = "val",
        small: bool = False,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        val_fraction: float = 0.0,
    ) -> None:
        super().__init__(small, batch_size, num_workers, seed, val_fraction)
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        self.train_dir, self.test_dir = train_dir, test_dir
        self.classes: tuple[str, ...] = ()

    @property
    def canonical(self) -> bool:
        """True when train and test are the folders as given (no hold-out taken from train); they are DABS's
        splits when the folders were made from its split files (module docstring)."""
        return self.val_fraction == 0

    @property
    def split_note(self) -> str:
        """Where the splits come from."""
        train, test = self.root / self.train_dir, self.root / self.test_dir
        if self.canonical:
            return f"class folders {train} (train) and {test} (test; valid = test: DABS has no valid split)"
        return (
            f"class folders {train} less a class-balanced {self.val_fraction} held out as valid (seed "
            f"{self.seed}; not DABS's), {test} as test"
        )

    def load_sources(self) -> SplitSources:
        """Scan the folders; hold out `val_fraction` of train as valid (valid = test when 0)."""
        self.classes = class_folders(self.root / self.train_dir)
        train, test = (
            DabsFolderImages(
                *scan_split(self.root / folder, self.classes, require_every_class=folder == self.train_dir),
                self.image_size,
            )
            for folder in (self.train_dir, self.test_dir)
        )
        return holdout_splits(train, test, self.val_fraction, self.seed)
