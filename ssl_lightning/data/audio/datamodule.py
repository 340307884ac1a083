"""`AudioClassificationDataModule`: the loaders shared by the labelled audio datamodules.

A subclass reads its data set's on-disk layout into clip lists per split (`read_splits`) and names its
classes; this base turns them into `ManifestAudioDataset`s and DataLoaders that follow the batch
contract of docs/architecture.md, with the API the probes and `ssl-lightning evaluate` rely on:
`classes`, `num_classes`, `label_type`, `train/val/test_dataloader` and `subclip_dataloader(split)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from ssl_lightning.audio import collate_audio
from ssl_lightning.data.audio.hub import HubAudioDataset, HubInput, HubSource, HubSplit, load_hub
from ssl_lightning.data.manifest import LabelType, ManifestAudioDataset, Mode, OnError
from ssl_lightning.data.resumable import ResumableDataLoader, TrainLoaderState, resumable_loader, shuffled
from ssl_lightning.data.sampling import WeightedDistributedSampler, inverse_frequency_weights

Clip = tuple[Path, tuple[str, ...]]
"""One clip of a split: its audio file and its label names (empty for unlabeled data)."""

MISSING_PREVIEW = 5
"""How many missing files an error or warning names."""


def check_missing(missing: Sequence[str], total: int, where: str, on_error: OnError, hint: str) -> None:
    """Report the clips of `where` whose audio is missing: raise (`on_error="raise"`) or warn ("skip").

    The message gives the count out of `total`, the first few names and `hint` (where the files were
    looked for). Nothing happens when `missing` is empty.

    Raises:
        FileNotFoundError: some clips are missing and `on_error` is "raise", or all of them are missing.
    """
    if not missing:
        return
    message = (
        f"{len(missing)} of {total} clips of {where} have no audio file ({hint}), e.g. "
        f"{list(missing[:MISSING_PREVIEW])}"
    )
    if on_error == "raise" or len(missing) == total:
        raise FileNotFoundError(f"{message}; pass on_error='skip' to leave missing clips out")
    warnings.warn(f"{message}; they are left out (on_error='skip')", stacklevel=3)


def check_splits(splits: dict[str, list[Clip]], sources: dict[str, str], owner: str) -> None:
    """Raise when a split has no clip, naming it and where its clips come from (`sources[split]`):
    an empty split would otherwise fail later, in a loader or a metric, without saying why.

    Raises:
        ValueError: some split of `splits` is empty.
    """
    empty = [split for split, clips in splits.items() if not clips]
    if empty:
        where = "; ".join(f"{split}: {sources[split]}" for split in empty)
        raise ValueError(
            f"{owner} split(s) {empty} have no clip ({where}); check that those files list clips and "
            "that their audio is there"
        )


class AudioClassificationDataModule(TrainLoaderState, L.LightningDataModule):
    """Train / valid / test clip lists served as audio batches.

    Training batches are random crops of `train_seconds` (default `clip_seconds`), shuffled with a
    generator seeded by `seed`, or, with `weighted_sampling`, drawn with replacement by a
    `WeightedDistributedSampler` with inverse label-frequency weights (each DDP rank draws its own
    share; `seed` seeds the draw). Validation, test and `subclip_dataloader` batches are the contiguous
    sub-clips of `clip_seconds` of every clip in split order (the last one zero-padded), with `clip_id`
    telling which clip each belongs to.

    Subclasses implement `read_splits()` and the `classes` and `label_type` properties (class attributes
    where they are fixed); `label_names` (the label strings of the clip lists) defaults to `classes`. A
    subclass whose data set is on the Hugging Face hub also sets `HUB` (the id at a pinned revision) and
    implements `hub_splits`; `hub=` then reads the splits from there instead of `read_splits()` (see
    `data/audio/hub.py`). `source_root` checks a constructor's root= / hub= pair.

    Args:
        batch_size: clips (training) or sub-clips (evaluation) per batch.
        num_workers: DataLoader worker processes.
        sample_rate: rate the audio is served at (files are resampled).
        clip_seconds: evaluation sub-clip length, and the default training crop length.
        on_error: "raise" on a missing or unreadable clip, or "skip" it (counted and warned about).
        seed: seed of the training shuffle or weighted draw.
        train_seconds: training crop length (None: `clip_seconds`).
        hub: read the data from Hugging Face `datasets` instead of the on-disk layout: the class's
            `HUB` id (at its pinned revision), another id or `save_to_disk` folder, a `HubSource`, or
            in-memory splits (a `DatasetDict`).
        weighted_sampling: draw training clips with inverse label-frequency weights.
    """

    HUB: HubSource | None = None
    """The data set's Hugging Face copy (id, pinned revision, config), when one exists."""

    def __init__(
        self,
        batch_size: int,
        num_workers: int,
        sample_rate: int,
        clip_seconds: float,
        on_error: OnError = "raise",
        seed: int = 0,
        train_seconds: float | None = None,
        hub: HubInput | None = None,
        weighted_sampling: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("batch_size", batch_size), ("sample_rate", sample_rate)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        for name, value in (("clip_seconds", clip_seconds), ("train_seconds", train_seconds)):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive seconds, got {value!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.batch_size, self.num_workers, self.sample_rate = batch_size, num_workers, sample_rate
        self.clip_seconds, self.train_seconds = clip_seconds, train_seconds
        self.on_error: OnError = on_error
        self.seed, self.weighted_sampling = seed, weighted_sampling
        self.hub = hub
        self._splits: dict[str, list[Clip] | HubSplit] | None = None
        self._datasets: dict[tuple[str, Mode, int | None], ManifestAudioDataset] = {}

    def source_root(self, root: str | None, hub: HubInput | None, download: str) -> Path | None:
        """`root` expanded (None when reading `hub`), after checking that exactly one of the two is given;
        `download` says what root must hold and where it comes from, for the error.

        Raises:
            ValueError: both or neither of root and hub are given.
        """
        if (root is None) == (hub is None):
            copy = (
                "your own datasets copy: the library reads no public one"
                if self.HUB is None
                else repr(self.HUB.path)
            )
            raise ValueError(
                f"{type(self).__name__} needs exactly one of root= ({download}) and hub= ({copy}); got "
                f"root={root!r}, hub={hub!r}"
            )
        return None if root is None else Path(root).expanduser()

    def hub_where(self, name: str) -> str:
        """How messages name the hub copy of data set `name`, e.g. `ESC-50 hub copy ashraq/esc50`."""
        return f"{name} hub copy {self.hub if isinstance(self.hub, str) else ''}".rstrip()

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in label-index order (empty for unlabeled data)."""
        raise NotImplementedError

    @property
    def label_type(self) -> str | None:
        """ "single" or "multi"; None for unlabeled data."""
        raise NotImplementedError

    @property
    def label_names(self) -> tuple[str, ...]:
        """The label strings used in the clip lists, in label-index order (default: `classes`)."""
        return self.classes

    @property
    def num_classes(self) -> int | None:
        """Number of classes C; None for unlabeled data."""
        return None if self.label_type is None else len(self.classes)

    @property
    def train_num_samples(self) -> int:
        """Training crop length in samples."""
        return round((self.train_seconds or self.clip_seconds) * self.sample_rate)

    @property
    def eval_num_samples(self) -> int:
        """Evaluation sub-clip length in samples."""
        return round(self.clip_seconds * self.sample_rate)

    def read_splits(self) -> dict[str, list[Clip]]:
        """The clips of every split, read from the data set's files (called once, by `setup`)."""
        raise NotImplementedError

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The splits of a Hugging Face copy (`tables`: split name -> `datasets.Dataset`, audio column
        `audio_column`), each a `HubSplit` whose labels name `label_names` (called once, by `setup`)."""
        raise NotImplementedError(f"{type(self).__name__} has no Hugging Face source; pass root= instead")

    def setup(self, stage: str | None = None) -> None:
        """Read the clip lists (once): from `hub` when given, else from the on-disk layout."""
        if self._splits is None:
            if self.hub is None:
                self._splits = self.read_splits()
            elif type(self).hub_splits is AudioClassificationDataModule.hub_splits:
                self.hub_splits({}, "")  # raises, before anything is downloaded
            else:
                self._splits = self.hub_splits(*load_hub(self.hub, self.HUB))

    def dataset_class(self, split: str, clips: list[Clip] | HubSplit) -> Callable[..., ManifestAudioDataset]:
        """What serves the clips of `split`: `ManifestAudioDataset` for files, `HubAudioDataset` for a hub
        split; a subclass may return another constructor with the same arguments."""
        return HubAudioDataset if isinstance(clips, HubSplit) else ManifestAudioDataset

    def dataset(self, split: str, mode: Mode, crops: int | None = None) -> ManifestAudioDataset:
        """The dataset of `split` as random crops ("random_crop") or evaluation sub-clips ("subclips":
        contiguous, or `crops` equally spaced overlapping ones per clip)."""
        if self._splits is None:
            raise RuntimeError(
                f"{type(self).__name__}.setup() must run before asking for a dataset or loader"
            )
        if split not in self._splits:
            raise ValueError(
                f"{type(self).__name__} has no split {split!r}; its splits: {list(self._splits)}"
            )
        if (split, mode, crops) not in self._datasets:
            label_type: LabelType = "none" if self.label_type is None else self.label_type
            clips = self._splits[split]
            self._datasets[split, mode, crops] = self.dataset_class(split, clips)(
                clips,
                self.label_names,
                label_type,
                sample_rate=self.sample_rate,
                num_samples=self.train_num_samples if mode == "random_crop" else self.eval_num_samples,
                mode=mode,
                on_error=self.on_error,
                crops=crops,
            )
        return self._datasets[split, mode, crops]

    def _loader(self, dataset: ManifestAudioDataset, batch_size: int) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            drop_last=False,
            num_workers=self.num_workers,
            collate_fn=collate_audio,
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
        )

    def weighted_sampler(self, dataset: ManifestAudioDataset) -> WeightedDistributedSampler:
        """Inverse label-frequency sampler over `dataset`, split across the trainer's ranks when attached."""
        if dataset.label_type == "none":
            raise ValueError(f"{type(self).__name__}: weighted_sampling needs labelled clips")
        world = (None, None) if self.trainer is None else (self.trainer.world_size, self.trainer.global_rank)
        weights = inverse_frequency_weights(*dataset.label_pairs(), len(dataset))
        return WeightedDistributedSampler(weights, num_replicas=world[0], rank=world[1], seed=self.seed)

    def train_dataloader(self) -> ResumableDataLoader:
        """Random crops of the train split: shuffled, or weighted draws with `weighted_sampling`; each
        crop drawn from a seed of `(seed, epoch, position)`, so a resumed fit continues exactly."""
        dataset = self.dataset("train", "random_crop")
        sampler = (
            self.weighted_sampler(dataset)
            if self.weighted_sampling
            else shuffled(dataset, self.seed, self.trainer)
        )
        return self.resumed(
            resumable_loader(
                dataset,
                sampler,
                self.batch_size,
                self.seed,
                num_workers=self.num_workers,
                collate_fn=collate_audio,
                persistent_workers=self.num_workers > 0,
            )
        )

    def val_dataloader(self) -> DataLoader:
        """Sub-clips of the valid split."""
        return self.subclip_dataloader("valid")

    def test_dataloader(self) -> DataLoader:
        """Sub-clips of the test split."""
        return self.subclip_dataloader("test")

    def subclip_dataloader(
        self, split: str, batch_size: int | None = None, crops: int | None = None
    ) -> DataLoader:
        """Sub-clips of `split` in split order (not shuffled), e.g. for frozen-feature extraction: contiguous
        ones of `clip_seconds`, or `crops` equally spaced, overlapping ones per clip."""
        return self._loader(self.dataset(split, "subclips", crops), batch_size or self.batch_size)
