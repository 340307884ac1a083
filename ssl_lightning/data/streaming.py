"""Streaming pre-training data at AudioSet scale: LitData shards written by `ssl-lightning shard-audio`.

`StreamingAudioDataModule` reads the shards with LitData's `StreamingDataset`, which hands each
distributed rank and each DataLoader worker a disjoint set of chunks (reshuffled every epoch with
`seed`), and serves them through `StreamingDataLoader`. Shards may sit in a local folder (memory-mapped
in place) or an object store LitData supports (s3://, gs://, ...; chunks are cached locally).

Exact resumption (a killed run resumed from its checkpoint ends bit-identical to the uninterrupted run):
- Random crops are a function of `(seed, epoch, sample)`: `SeededStreamingDataset` reads each item with
  torch's CPU generator seeded from the three (forked, see `ssl_lightning.data.resumable.seeded_draws`),
  so they do not depend on workers, prefetching or restarts, and leave the training step's draws alone.
- `FitEpochStreamingDataLoader` is LitData's `StreamingDataLoader`, whose `state_dict()` (LitData epoch
  and clips yielded) Lightning's fit loop saves in every checkpoint and restores on `fit(ckpt_path=...)`;
  LitData then replays its workers' chunks and continues with the next batch. Fit epoch `e` reads LitData
  epoch `e + 1` (also when `limit_train_batches` ends it early), and a restored state continues only
  within the fit epoch it was saved in: after a resume at the end of a fit epoch the next LitData epoch
  starts, as in the uninterrupted run.
- The loader draws its worker seeds from its own generator: from the global one, the resumed run's first
  `iter()` (which the uninterrupted run made at the epoch's start, before the checkpoint) would shift the
  training step's random stream (views, masks, dropout).
- The datamodule saves the train loader's state too (`resumable.TrainLoaderState`), for recipes with
  `max_epochs`, whose loader Lightning sets up before it reads the checkpoint's loop state.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from litdata import StreamingDataLoader, StreamingDataset
from litdata.streaming.sampler import ChunkedIndex
from torch import Tensor

from ssl_lightning.audio import collate_audio, crop_or_pad
from ssl_lightning.data.manifest import LABEL_SEPARATOR
from ssl_lightning.data.resumable import SEED_RANGE, TrainLoaderState, seeded_draws
from ssl_lightning.data.sharding import METADATA_FILENAME, PCM_SCALE, SHARD_COMMAND

LabelType = Literal["single", "multi"]


def read_shard_metadata(shard_dir: str | Path) -> dict[str, Any]:
    """The `shards.json` of a local folder written by `shard_audio`, after checking it holds shards.

    Raises FileNotFoundError naming the folder and the command that creates shards when the folder,
    its LitData index or its metadata is missing, and ValueError when the index lists no chunk.
    """
    shard_dir = Path(shard_dir)
    hint = f"create the shards with `{SHARD_COMMAND.replace('OUTPUT', str(shard_dir))}`"
    if not shard_dir.is_dir():
        raise FileNotFoundError(f"shard folder not found: {shard_dir}; {hint}")
    index_path, metadata_path = shard_dir / "index.json", shard_dir / METADATA_FILENAME
    if not index_path.is_file():
        raise FileNotFoundError(f"{shard_dir} holds no LitData shards (no index.json); {hint}")
    if not metadata_path.is_file():
        raise FileNotFoundError(
            f"{shard_dir} has LitData shards but no {METADATA_FILENAME}: they were not written by "
            f"shard-audio, so their sample rate and format are unknown; {hint}"
        )
    if not json.loads(index_path.read_text())["chunks"]:
        raise ValueError(f"the shards in {shard_dir} hold no clip (index.json lists no chunk); {hint}")
    return json.loads(metadata_path.read_text())


class ShardItemToClip:
    """Turns a shard item (`audio` int16 `[T]`, `clip_id`, optional label text) into a batch-contract item.

    Output: `audio` float32 `[num_samples]` (cropped at `crop_mode`, or zero-padded at the end),
    `padding_mask` bool `[num_samples]` (True = padding), `clip_id` int64 scalar and, when `classes` is
    given, `label`: int64 class index ("single") or float32 multi-hot `[C]` ("multi"). `num_samples=None`
    keeps whole clips (`collate_audio` pads the batch). Random crops draw from torch's global generator,
    which `SeededStreamingDataset` seeds per item.
    """

    def __init__(
        self,
        num_samples: int | None,
        crop_mode: str,
        classes: Sequence[str] | None = None,
        label_type: LabelType = "multi",
    ) -> None:
        self.num_samples = num_samples
        self.crop_mode = crop_mode
        self.classes = None if classes is None else tuple(classes)
        self.label_type = label_type

    def __call__(self, item: dict[str, Any]) -> dict[str, Tensor]:
        pcm = torch.from_numpy(item["audio"])
        if self.num_samples is None:
            padding_mask = torch.zeros(pcm.shape, dtype=torch.bool)
        else:
            pcm, padding_mask = crop_or_pad(pcm, self.num_samples, mode=self.crop_mode)
        clip = {
            "audio": pcm.float().div_(PCM_SCALE),
            "padding_mask": padding_mask,
            "clip_id": torch.tensor(item["clip_id"], dtype=torch.int64),
        }
        if self.classes is not None:
            clip["label"] = self._encode_label(item)
        return clip

    def _encode_label(self, item: dict[str, Any]) -> Tensor:
        """int64 scalar ("single") or float32 multi-hot `[C]` ("multi") from the label text "a;b"."""
        if "label" not in item:
            raise KeyError(
                f"clip {item['clip_id']} has no label in the shards; shard a manifest with a label column "
                "or leave `classes` unset for unlabelled pre-training"
            )
        labels = [label for label in item["label"].split(LABEL_SEPARATOR) if label]
        unknown = [label for label in labels if label not in self.classes]
        if unknown or (self.label_type == "single" and len(labels) != 1):
            raise ValueError(
                f"clip {item['clip_id']} (see clips.csv in the shard folder) has label(s) {labels}: "
                f"{'unknown ' + str(unknown) if unknown else 'a single-label clip needs exactly one'}; "
                f"known classes: {list(self.classes)}"
            )
        if self.label_type == "single":
            return torch.tensor(self.classes.index(labels[0]), dtype=torch.int64)
        multi_hot = torch.zeros(len(self.classes), dtype=torch.float32)
        multi_hot[[self.classes.index(label) for label in labels]] = 1.0
        return multi_hot


class SeededStreamingDataset(StreamingDataset):
    """A `StreamingDataset` that reads (and transforms) sample `i` of epoch `e` with torch's CPU generator
    seeded from `(seed, e, i)`: its random crops are the same whichever rank, worker or restarted run
    reads it."""

    def __getitem__(self, index: ChunkedIndex | int | slice | str) -> Any:
        if not isinstance(index, (ChunkedIndex, int)):
            return super().__getitem__(index)
        sample = int(index.index if isinstance(index, ChunkedIndex) else index)
        keys = np.random.SeedSequence([self.seed, self.current_epoch, sample])
        with seeded_draws(int(keys.generate_state(1, np.uint64)[0]) % SEED_RANGE):
            return super().__getitem__(index)


class FitEpochStreamingDataLoader(StreamingDataLoader):
    """A `StreamingDataLoader` whose LitData epoch follows the fit loop's: fit epoch `e` reads LitData epoch
    `e + 1` (LitData counts from 1), and a restored state continues only within the fit epoch it was saved in.

    `fit_epoch()` is the trainer's current epoch (None without a trainer: LitData counts its epochs). Both
    are read when the first batch is asked for: on resume Lightning creates the iterator before it moves to
    the next fit epoch. A fit epoch cut short by `limit_train_batches` leaves clips of its LitData epoch,
    which a plain `StreamingDataLoader` would continue after a resume at that fit epoch's end.
    """

    def __init__(self, dataset: StreamingDataset, fit_epoch: Callable[[], int | None], **kwargs: Any) -> None:
        super().__init__(dataset, **kwargs)
        self.fit_epoch = fit_epoch
        self.state_fit_epoch: int | None = None

    def __iter__(self) -> Any:
        epoch = self.fit_epoch()
        if epoch is not None:
            if self.restore and self.state_fit_epoch != epoch:
                self.restore = False
            if not self.restore:
                self.current_epoch = epoch  # StreamingDataLoader.__iter__ moves on to epoch + 1
        yield from super().__iter__()

    def state_dict(self) -> dict[str, Any]:
        """LitData's state and the fit epoch it belongs to."""
        return super().state_dict() | {"fit_epoch": self.fit_epoch()}

    def load_state_dict(self, obj: dict[str, Any]) -> None:
        super().load_state_dict(obj)
        self.state_fit_epoch = obj["fit_epoch"]


class StreamingAudioDataModule(TrainLoaderState, L.LightningDataModule):
    """Sharded streaming audio for pre-training: random crops of `clip_seconds` from LitData shards.

    Args:
        train_dir: shard folder (or object-store URL) written by `ssl-lightning shard-audio`.
        val_dir: optional validation shards (centre crops, no shuffling, split across ranks like train_dir).
        batch_size: clips per batch and per rank.
        num_workers: DataLoader workers per rank; each streams its own chunks.
        clip_seconds: crop (or zero-pad) every clip to this length; None keeps whole clips.
        sample_rate: must equal the rate the shards were written at (checked for local shards).
        shuffle: shuffle chunk order and the clips within chunks, anew every epoch.
        seed: shuffling seed; the same on every rank so that the ranks split the chunks consistently.
        drop_last: drop the remainder so that every rank and worker streams the same number of clips
            (LitData's meaning; always on under DDP, where unequal ranks would hang).
        max_cache_size: local cache budget for remote shards, e.g. "200GB" (None: LitData's default,
            75% of the free disk); local shards are read in place.
        classes: with labelled shards, emit `label` encoded over these class names; None: no label.
        label_type: "multi" (float32 multi-hot `[B, C]`) or "single" (int64 `[B]`).

    Batches: `audio` float32 `[B, T]`, `padding_mask` bool `[B, T]`, `clip_id` int64 `[B]` (the row of
    `clips.csv` in the shard folder) and `label` when `classes` is set.
    """

    def __init__(
        self,
        train_dir: str,
        val_dir: str | None = None,
        batch_size: int = 32,
        num_workers: int = 4,
        clip_seconds: float | None = 10.0,
        sample_rate: int = 16000,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        max_cache_size: str | None = None,
        classes: Sequence[str] | None = None,
        label_type: LabelType = "multi",
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"batch_size must be >= 1 and num_workers >= 0; got {batch_size}, {num_workers}")
        if clip_seconds is not None and clip_seconds <= 0:
            raise ValueError(f"clip_seconds must be positive or None (whole clips), got {clip_seconds}")
        if label_type not in ("single", "multi"):
            raise ValueError(f"label_type must be 'single' or 'multi', got {label_type!r}")
        self.save_hyperparameters()
        self.train_dir, self.val_dir = train_dir, val_dir
        self.batch_size, self.num_workers = batch_size, num_workers
        self.sample_rate, self.shuffle, self.seed, self.drop_last = sample_rate, shuffle, seed, drop_last
        self.max_cache_size = max_cache_size
        self.num_samples = None if clip_seconds is None else round(clip_seconds * sample_rate)
        self.classes = None if classes is None else tuple(classes)
        self.label_type = label_type
        self.train_dataset: StreamingDataset | None = None
        self.val_dataset: StreamingDataset | None = None

    def setup(self, stage: str) -> None:
        """Open the shards; runs on every rank after the process group exists, so each rank finds its part."""
        if stage == "fit":
            self.train_dataset = self._dataset(self.train_dir, train=True)
        if stage in ("fit", "validate") and self.val_dir is not None:
            self.val_dataset = self._dataset(self.val_dir, train=False)
        if stage == "validate" and self.val_dir is None:
            raise ValueError("StreamingAudioDataModule has no val_dir; pass val_dir to validate")

    def _check_local_shards(self, shard_dir: str) -> None:
        """Local shards must exist, match `sample_rate` and carry labels when `classes` is set."""
        metadata = read_shard_metadata(shard_dir)
        if metadata["sample_rate"] != self.sample_rate:
            raise ValueError(
                f"the shards in {shard_dir} hold {metadata['sample_rate']} Hz audio but sample_rate="
                f"{self.sample_rate}; set sample_rate={metadata['sample_rate']} or re-shard with "
                f"--sample-rate {self.sample_rate}"
            )
        if self.classes is not None and not metadata["has_label"]:
            raise ValueError(
                f"classes is set but the shards in {shard_dir} hold no labels; shard a manifest with a label "
                "column, or leave classes unset for unlabelled pre-training"
            )

    def _dataset(self, shard_dir: str, train: bool) -> StreamingDataset:
        if "://" not in shard_dir:
            self._check_local_shards(shard_dir)
        transform = ShardItemToClip(
            self.num_samples, "random" if train else "center", self.classes, self.label_type
        )
        return SeededStreamingDataset(
            shard_dir,
            shuffle=self.shuffle and train,
            drop_last=self.drop_last,
            seed=self.seed,
            max_cache_size=self.max_cache_size,
            transform=transform,
        )

    def _loader(self, dataset: StreamingDataset | None, stage: str) -> FitEpochStreamingDataLoader:
        if dataset is None:
            raise RuntimeError(f"call setup({stage!r}) before asking StreamingAudioDataModule for its loader")
        return FitEpochStreamingDataLoader(
            dataset,
            self._fit_epoch,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_audio,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _fit_epoch(self) -> int | None:
        """The trainer's current epoch (None without a trainer)."""
        return None if self.trainer is None else self.trainer.current_epoch

    def train_dataloader(self) -> StreamingDataLoader:
        """Batches of random crops; each rank and worker streams a disjoint set of chunks. After a restore
        (`load_state_dict`) the loader continues where the checkpointed one was."""
        return self.resumed(self._loader(self.train_dataset, "fit"))

    def val_dataloader(self) -> StreamingDataLoader | list:
        """Batches of centre crops from `val_dir` (an empty list when there is none)."""
        return [] if self.val_dir is None else self._loader(self.val_dataset, "validate")
