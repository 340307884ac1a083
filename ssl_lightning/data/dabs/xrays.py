"""DABS chest x-rays (Tamkin et al. 2021, `src/datasets/medical_images/`): batches
`{"image": float32 [B, 3, 224, 224] in [0, 1], "label": float32 [B, C] multi-hot, "clip_id": int64 [B]}`.

Both data sets are multi-label (DABS: one BCE output per label, scored by macro AUROC; batch 64) with one
input `InputSpec("image", "2d", (224, 224), 16, 3)` (196 tokens). DABS's x-ray transform is
`Resize((224, 224))` (PIL bilinear on both sides, so the aspect ratio is not kept) then `ToTensor()`: no
crop, no augmentation, no normalisation, grayscale files made RGB by PIL's `convert("RGB")`. That is
`dabs_transform(224)` (its `CenterCrop` after a square resize is a no-op), so `DabsFolderImages` reads
the files.

- `CheXpertDataModule`: CheXpert (Irvin et al. 2019), DABS's x-ray pre-training set (`train.csv`) and its
  transfer task `chexpert` (train: `train.csv`, test: `valid.csv`, 234 images of 200 studies), 5 labels.
- `ChestXray8DataModule`: NIH ChestX-ray8 (Wang et al. 2017), DABS's transfer task `xray8`, 8 labels;
  DABS splits the images 90/10 after a `numpy.random.RandomState(42)` shuffle.

DABS has no validation split: it trains on train and reports on test, so "valid" serves the test set
unless `val_fraction` holds out a seeded random share of the train images (not stratified: labels are
multi-hot; images of one patient may fall on both sides).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ssl_lightning.data.dabs.folders import DabsFolderImages
from ssl_lightning.data.dabs.images import DabsImageDataModule
from ssl_lightning.data.image.datamodule import SplitSources, holdout_splits

CHEXPERT_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
"""The 5 CheXpert observations DABS keeps (Irvin et al. 2019's competition tasks), in label order."""
CHEXPERT_FOLDERS = ("CheXpert-v1.0", "CheXpert-v1.0-small")
"""CheXpert folders as the archives unpack, in DABS's order of preference (full resolution first)."""
CHEXPERT_URL = "https://stanfordmlgroup.github.io/competitions/chexpert/"

XRAY8_LABELS = (
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
)
"""The 8 pathologies of the ChestX-ray8 paper, which DABS keeps, in label order."""
XRAY8_METADATA = ("metadata.csv", "Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv")
"""ChestX-ray8 metadata files, first found wins (DABS saves `Data_Entry_2017.csv` as `metadata.csv`)."""
XRAY8_URL = "https://nihcc.app.box.com/v/ChestXray-NIHCC"
XRAY8_SEED, XRAY8_TRAIN_FRACTION = 42, 0.9
"""DABS's ChestX-ray8 split: `RandomState(42)` shuffle, the first 90% train."""


def random_holdout(
    train: DabsFolderImages, test: DabsFolderImages, val_fraction: float, seed: int
) -> SplitSources:
    """`holdout_splits` for multi-hot labels: with `val_fraction` > 0, `round(val_fraction * N)` (at least
    1) train images drawn by a `seed`ed permutation become "valid" (sorted indices), the rest "train"; with
    0, "train" is the whole train set and "valid" serves the test set.

    Raises:
        ValueError: the hold-out would leave no train image.
    """
    splits = holdout_splits(train, test, 0.0, seed)
    if val_fraction == 0:
        return splits
    count = max(1, round(val_fraction * len(train)))
    if count >= len(train):
        raise ValueError(
            f"val_fraction {val_fraction} of {len(train)} train images leaves none to train on; lower it"
        )
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    splits["valid"] = (train, order[:count].sort().values)
    splits["train"] = (train, order[count:].sort().values)
    return splits


class DabsXrayDataModule(DabsImageDataModule):
    """Base of the DABS chest x-ray datamodules: one 224 x 224 `"image"` input (16 x 16 patches) and
    multi-hot float labels `[C]`, both views the DABS transform. Subclasses set `classes`, `train_split` and
    `test_split` (what the splits are made of, in words) and implement `read_splits()`.

    Args:
        root: the data set's folder (see the subclass).
        batch_size: images per batch (DABS: 64).
        num_workers: DataLoader workers (JPEG / PNG decoding needs several on real data).
        seed: seed of the valid hold-out, the training shuffle and draws.
        val_fraction: seeded random share of train held out as "valid"; 0 (DABS: no validation split):
            "valid" serves the test set.
    """

    label_type = "multi"
    train_split: str
    test_split: str

    def __init__(
        self, root: str, batch_size: int = 64, num_workers: int = 0, seed: int = 0, val_fraction: float = 0.0
    ) -> None:
        super().__init__(False, batch_size, num_workers, seed, val_fraction)
        self.save_hyperparameters()
        self.root = Path(root).expanduser()

    @property
    def canonical(self) -> bool:
        """True when train and test are DABS's (no hold-out taken from train)."""
        return self.val_fraction == 0

    @property
    def split_note(self) -> str:
        """Where the splits come from."""
        train, test = self.train_split, self.test_split
        if self.canonical:
            return f"{train} (train) and {test} (test; valid = test: DABS has no valid split)"
        return (
            f"{train} less a random {self.val_fraction} held out as valid (seed {self.seed}; not DABS's: "
            f"DABS trains on all of it), {test} as test"
        )

    def read_splits(self) -> tuple[DabsFolderImages, DabsFolderImages]:
        """DABS's train and test images with their multi-hot labels."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_splits()")

    def load_sources(self) -> SplitSources:
        """Read DABS's train and test sets; hold out `val_fraction` of train as valid (valid = test at 0)."""
        return random_holdout(*self.read_splits(), self.val_fraction, self.seed)


def find_chexpert_folder(root: Path) -> Path:
    """`root/CheXpert-v1.0` or else `root/CheXpert-v1.0-small` (DABS prefers the full resolution).

    Raises:
        FileNotFoundError: neither exists (the message says where to download and how to unpack).
    """
    for name in CHEXPERT_FOLDERS:
        if (root / name).is_dir():
            return root / name
    raise FileNotFoundError(
        f"no CheXpert-v1.0-small (or CheXpert-v1.0) folder in {root}: register at {CHEXPERT_URL}, download "
        "CheXpert-v1.0-small.zip (the downsampled version DABS's results use) and unzip it there, so that "
        "root holds CheXpert-v1.0-small/train.csv, valid.csv, train/ and valid/ (DABS: "
        "<data root>/medical_images/chexpert); root is the folder holding it, as the CSV paths start with it"
    )


def _uzeros(value: str | None, path: Path, line: int, column: str) -> float:
    """One CheXpert label as DABS reads it (U-Zeros): "1.0" -> 1; "0.0", "-1.0" (uncertain), blank -> 0."""
    text = (value or "").strip()
    try:
        label = float(text) if text else 0.0
    except ValueError:
        label = None
    if label not in (1.0, 0.0, -1.0):
        raise ValueError(
            f"{path} line {line}: {column} is {value!r}; CheXpert labels are 1.0, 0.0, -1.0 or blank"
        )
    return max(label, 0.0)


def read_chexpert_csv(path: Path, root: Path) -> tuple[list[Path], Tensor]:
    """The images of one CheXpert CSV (`train.csv`, `valid.csv`): paths `root / <Path column>` and float32
    `[N, 5]` labels of `CHEXPERT_LABELS`, read by header name; blank and -1 (uncertain) are 0 (DABS).

    Raises:
        FileNotFoundError: the CSV or an image it lists is missing.
        ValueError: the header lacks a needed column, a label is not 1.0 / 0.0 / -1.0 / blank, or no rows.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"CheXpert index {path} does not exist; unzip the CheXpert archive ({CHEXPERT_URL}) again: its "
            "folder holds train.csv and valid.csv"
        )
    paths, labels = [], []
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        missing = [name for name in ("Path", *CHEXPERT_LABELS) if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                f"{path}: the header lacks column(s) {missing}; a CheXpert CSV has Path, Sex, Age, "
                "Frontal/Lateral, AP/PA and the 14 observations (No Finding ... Support Devices)"
            )
        for row in reader:
            paths.append(root / row["Path"])
            labels.append([_uzeros(row[name], path, reader.line_num, name) for name in CHEXPERT_LABELS])
    if not paths:
        raise ValueError(f"{path} lists no images")
    absent = [image for image in paths if not image.is_file()]
    if absent:
        raise FileNotFoundError(
            f"{path} lists {len(absent)} image(s) missing under {root}, e.g. {absent[0]}; root must be the "
            f"folder that holds {path.parent.name} (the Path column is relative to it); unzip the archive "
            "again"
        )
    return paths, torch.tensor(labels, dtype=torch.float32)


class CheXpertDataModule(DabsXrayDataModule):
    """CheXpert as DABS serves it (`chexpert`): `train.csv` (train; also DABS's x-ray pre-training set)
    and `valid.csv` (test), labels Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion
    (blank and uncertain -1 -> 0: U-Zeros), float32 `[5]`.

    Args:
        root: the folder that holds `CheXpert-v1.0-small` (or the full-resolution `CheXpert-v1.0`, used
            when both are there, as DABS does): the CSVs' `Path` column (`CheXpert-v1.0-small/train/
            patient00001/study1/view1_frontal.jpg`) is relative to it. Register and download at
            https://stanfordmlgroup.github.io/competitions/chexpert/ (DABS: `<data root>/medical_images/
            chexpert`).
        batch_size, num_workers, seed, val_fraction: see `DabsXrayDataModule`.
    """

    classes = CHEXPERT_LABELS
    train_split, test_split = "CheXpert train.csv", "CheXpert valid.csv"

    def read_splits(self) -> tuple[DabsFolderImages, DabsFolderImages]:
        """The images and labels of `train.csv` and `valid.csv`."""
        folder = find_chexpert_folder(self.root)
        train, test = (
            DabsFolderImages(*read_chexpert_csv(folder / f"{split}.csv", self.root), self.image_size)
            for split in ("train", "valid")
        )
        return train, test


def xray8_split(names: list[str]) -> tuple[list[str], list[str]]:
    """DABS's ChestX-ray8 split of image names: `numpy.random.RandomState(42).shuffle`, then the first
    `int(0.9 * n)` are train and the rest test, each in shuffled order. (Shuffling an index array draws the
    same permutation as DABS's shuffle of the name array: it depends on the length only.)"""
    order = np.arange(len(names))
    np.random.RandomState(XRAY8_SEED).shuffle(order)
    cut = int(len(names) * XRAY8_TRAIN_FRACTION)
    return [names[i] for i in order[:cut]], [names[i] for i in order[cut:]]


def xray8_multi_hot(findings: str) -> list[float]:
    """`[8]` multi-hot of a `Finding Labels` value (`Cardiomegaly|Effusion`, `No Finding`): 1 for each of
    `XRAY8_LABELS` in its `|`-separated list. DABS tests `pathology in label_str`, a substring test; on the
    data set's 15 label names (none holds another) that is the same."""
    present = set(findings.split("|"))
    return [float(label in present) for label in XRAY8_LABELS]


def read_xray8_metadata(root: Path) -> dict[str, str]:
    """`Image Index` -> `Finding Labels` of the first metadata file of `XRAY8_METADATA` under `root`.

    Raises:
        FileNotFoundError: none is there.
        ValueError: its header lacks `Image Index` or `Finding Labels`.
    """
    path = next((root / name for name in XRAY8_METADATA if (root / name).is_file()), None)
    if path is None:
        raise FileNotFoundError(
            f"no ChestX-ray8 metadata in {root} (looked for {', '.join(XRAY8_METADATA)}): download "
            f"Data_Entry_2017.csv from {XRAY8_URL} into that folder (DABS saves it as metadata.csv)"
        )
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        columns = ("Image Index", "Finding Labels")
        missing = [name for name in columns if name not in (reader.fieldnames or ())]
        if missing:
            raise ValueError(
                f"{path}: the header lacks column(s) {missing}; ChestX-ray8's Data_Entry_2017.csv starts "
                "with Image Index, Finding Labels, Follow-up #, Patient ID"
            )
        return {row["Image Index"]: row["Finding Labels"] for row in reader}


class ChestXray8DataModule(DabsXrayDataModule):
    """NIH ChestX-ray8 as DABS serves it (`xray8`): the `.png` files of `images/`, split by `xray8_split`,
    labels the 8 pathologies `XRAY8_LABELS` from the metadata's `Finding Labels`, float32 `[8]`.

    DABS splits `os.listdir` order, which depends on the file system (not reproducible elsewhere); here
    the sorted names are split the same way, so a split is the same on every machine.

    Args:
        root: the folder holding `images/` (the 12 `images_*.tar.gz` archives of
            https://nihcc.app.box.com/v/ChestXray-NIHCC unpack into it) and the metadata CSV
            (`metadata.csv`, as DABS saves it, or `Data_Entry_2017.csv` / `Data_Entry_2017_v2020.csv`;
            DABS: `<data root>/medical_images/xray8`).
        batch_size, num_workers, seed, val_fraction: see `DabsXrayDataModule`.
    """

    classes = XRAY8_LABELS
    train_split = (
        "ChestX-ray8 images/*.png sorted (DABS: in file-system order), the first 90% after a RandomState(42) "
        "shuffle"
    )
    test_split = "the other 10%"

    def read_splits(self) -> tuple[DabsFolderImages, DabsFolderImages]:
        """The images of `images/` with their metadata labels, split as DABS.

        Raises:
            FileNotFoundError: `images/` or the metadata is missing, or `images/` has no `.png` file.
            ValueError: an image has no metadata row.
        """
        folder = self.root / "images"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"ChestX-ray8 images folder {folder} does not exist: download the 12 images_*.tar.gz "
                f"archives of {XRAY8_URL} and unpack them in {self.root} (they unpack into images/), next "
                "to Data_Entry_2017.csv"
            )
        names = sorted(path.name for path in folder.iterdir() if path.name.endswith(".png"))
        if not names:
            raise FileNotFoundError(f"{folder} holds no .png image; unpack the ChestX-ray8 archives there")
        findings = read_xray8_metadata(self.root)
        unlisted = [name for name in names if name not in findings]
        if unlisted:
            raise ValueError(
                f"{len(unlisted)} image(s) of {folder} have no row in the metadata, e.g. {unlisted[0]}; use "
                "the full Data_Entry_2017.csv and remove files that are not ChestX-ray8 images"
            )
        train, test = (
            DabsFolderImages(
                [folder / name for name in split],
                torch.tensor([xray8_multi_hot(findings[name]) for name in split], dtype=torch.float32),
                self.image_size,
            )
            for split in xray8_split(names)
        )
        return train, test
