"""`DabsDataModule`: the loaders shared by the DABS datamodules (Tamkin et al. 2021; images, sensors,
speech, text), serving DABS batches (`ssl_lightning/nn/input_specs.py`).

A batch is a dict holding each input under its `InputSpec.name` (`tokens`: int64 [B, L]; `1d`: float
[B, T, C]; `2d`: float [B, C, H, W]), `label` (int64 [B] class ids, float [B, C] multi-hot, or float [B]
regression targets) and `clip_id` (int64 [B]: the item's index in its split's dataset).

API for subclasses (stable):

- `__init__`: call `super().__init__(batch_size, num_workers, seed)`, then `self.save_hyperparameters()`.
- Provide (class attributes or properties) `input_specs: list[InputSpec]`, `classes: tuple[str, ...]`
  (label-index order; empty for regression), `label_type` ("single" | "multi" | "regression"),
  `canonical: bool` (the DABS splits) and `split_note: str` (one line: which split, from which files).
- Implement `load()` (read the data once; `setup` calls it) and `make_dataset(split, mode)`: a map-style
  dataset of dicts `{<spec name>: tensor, "label": tensor}` for split "train" | "valid" | "test" and mode
  "random_crop" (training view: random draws use torch's global CPU generator, which the train loader
  seeds per item from `(seed, epoch, position)`) or "subclips" (evaluation view: deterministic). The base
  adds `clip_id` (`ClipIds`) and caches it.

The base provides `num_classes`, `dataset(split, mode)`, `train_dataloader()` (a `(seed, epoch)` shuffle
that a resumed fit continues exactly), `val_dataloader()`, `test_dataloader()` and
`subclip_dataloader(split, batch_size=None, crops=None)` (every item once, in order; `crops` must be None:
DABS evaluates one view per item).
"""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssl_lightning.data.resumable import ResumableDataLoader, TrainLoaderState
from ssl_lightning.nn.input_specs import InputSpec

SPLITS = ("train", "valid", "test")
MODES = ("random_crop", "subclips")
Mode = Literal["random_crop", "subclips"]
DabsLabelType = Literal["single", "multi", "regression"]


class ClipIds(Dataset):
    """`dataset`'s items with `clip_id`: int64 scalar, the item's index."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {**self.dataset[index], "clip_id": torch.tensor(index, dtype=torch.long)}


class DabsDataModule(TrainLoaderState, L.LightningDataModule):
    """Train / valid / test datasets of one DABS domain served as DABS batches (see the module docstring).

    Args:
        batch_size: items per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle and per-item random draws (and of a subclass's own draws).
    """

    input_specs: list[InputSpec]
    classes: tuple[str, ...]
    label_type: DabsLabelType
    canonical: bool
    split_note: str

    def __init__(self, batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__()
        name = type(self).__name__
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"{name}: batch_size must be a positive int, got {batch_size!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"{name}: num_workers must be an int >= 0, got {num_workers!r}")
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self._loaded = False
        self._datasets: dict[tuple[str, str], ClipIds] = {}

    @property
    def num_classes(self) -> int:
        """Classes C (label width); 1 for regression."""
        return 1 if self.label_type == "regression" else len(self.classes)

    def load(self) -> None:
        """Read the data (called once, by `setup`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def make_dataset(self, split: str, mode: Mode) -> Dataset:
        """Items `{<spec name>: tensor, "label": tensor}` of `split` in view `mode` (no `clip_id`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_dataset()")

    def setup(self, stage: str | None = None) -> None:
        """Read the data (once)."""
        if not self._loaded:
            self.load()
            self._loaded = True

    def dataset(self, split: str, mode: Mode) -> ClipIds:
        """Items of `split` ("train", "valid", "test") in view `mode` ("random_crop": training view,
        "subclips": evaluation view), with `clip_id`."""
        name = type(self).__name__
        if not self._loaded:
            raise RuntimeError(f"{name}.setup() must run before asking for a dataset or loader")
        if split not in SPLITS:
            raise ValueError(f"{name} has no split {split!r}; its splits: {list(SPLITS)}")
        if mode not in MODES:
            raise ValueError(f"{name}: mode must be one of {list(MODES)}, got {mode!r}")
        if (split, mode) not in self._datasets:
            self._datasets[split, mode] = ClipIds(self.make_dataset(split, mode))
        return self._datasets[split, mode]

    def train_dataloader(self) -> ResumableDataLoader:
        """Training views of "train" in a `(seed, epoch)` shuffle, each item's draws seeded by
        `(seed, epoch, position)`, so a resumed fit continues exactly."""
        return self.resumable_train_loader(self.dataset("train", "random_crop"))

    def val_dataloader(self) -> DataLoader:
        """Evaluation views of "valid", in order."""
        return self.subclip_dataloader("valid")

    def test_dataloader(self) -> DataLoader:
        """Evaluation views of "test", in order."""
        return self.subclip_dataloader("test")

    def subclip_dataloader(
        self, split: str, batch_size: int | None = None, crops: int | None = None
    ) -> DataLoader:
        """Evaluation views of every item of `split` once, in order, `clip_id` = index in the split.

        Raises:
            ValueError: `crops` is given (DABS evaluates one view per item: there are no crops to choose).
        """
        if crops is not None:
            raise ValueError(
                f"{type(self).__name__}: DABS data has one evaluation view per item; crops must be None, "
                f"got {crops!r}"
            )
        return DataLoader(
            self.dataset(split, "subclips"),
            batch_size=batch_size or self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
