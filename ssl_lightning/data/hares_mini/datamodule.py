"""`HaresMiniDataModule`: one hares-mini task (or the unlabeled pool) as a LightningDataModule."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from ssl_lightning.audio import collate_audio
from ssl_lightning.data.hares_mini.build import (
    MANIFEST,
    ensure_hares_mini,
    hares_mini_dir,
    is_complete,
    resolve_split_sizes,
)
from ssl_lightning.data.hares_mini.registry import PoolSpec, TaskSpec, get_spec
from ssl_lightning.data.manifest import LabelType, ManifestAudioDataset, ManifestRow, Mode, read_manifest


class HaresMiniDataModule(L.LightningDataModule):
    """Serves one hares-mini task, generating it on first use (`prepare_data`).

    Training batches are random crops of `train_seconds` (default: the task's `eval_seconds`; the
    whole 2 s clip for the pool), shuffled with a generator seeded by `seed`. Validation, test and
    `subclip_dataloader` batches are the contiguous sub-clips of `eval_seconds` of every clip, in
    manifest order, with `clip_id` telling which clip each sub-clip belongs to. Batches follow the
    contract of docs/architecture.md (`audio` [B, T], `padding_mask` [B, T], `label`, `clip_id`);
    the pool's batches carry no `label`.

    Args:
        task: a name of `TASKS` or "pool" (the unlabeled pre-training pool: splits train and valid).
        root: data folder (default `$SSL_LIGHTNING_DATA`, else `~/.cache/ssl_lightning`).
        sample_rate: rate the audio is served at (resampled from the stored 16 kHz if different).
        on_error: "raise" on an unreadable clip, or "skip" it (counted in the dataset's `skipped`).
        split_sizes: override the clips per split (e.g. {"train": 8, "valid": 4, "test": 4} for smoke
            runs); such a build lives in its own folder next to the full one.
    """

    def __init__(
        self,
        task: str = "env_events",
        root: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        train_seconds: float | None = None,
        on_error: str = "raise",
        seed: int = 0,
        split_sizes: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.spec: TaskSpec | PoolSpec = get_spec(task)
        self.split_sizes = resolve_split_sizes(self.spec, split_sizes)
        for name, value in (("batch_size", batch_size), ("sample_rate", sample_rate)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {num_workers!r}")
        if train_seconds is not None and train_seconds <= 0:
            raise ValueError(
                f"train_seconds must be positive (or None for the task default), got {train_seconds}"
            )
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self._rows: dict[str, list[ManifestRow]] | None = None
        self._datasets: dict[tuple[str, Mode], ManifestAudioDataset] = {}

    @property
    def task_spec(self) -> TaskSpec | None:
        """The task's `TaskSpec`; None for the pool."""
        return self.spec if isinstance(self.spec, TaskSpec) else None

    @property
    def num_classes(self) -> int | None:
        """Number of classes C; None for the pool."""
        return None if self.task_spec is None else self.task_spec.num_classes

    @property
    def label_type(self) -> str | None:
        """ "single" or "multi"; None for the pool."""
        return None if self.task_spec is None else self.task_spec.label_type

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names (empty for the pool)."""
        return () if self.task_spec is None else self.task_spec.classes

    @property
    def data_dir(self) -> Path:
        """Folder of this task's generated clips and manifest."""
        return hares_mini_dir(self.hparams.root, self.hparams.split_sizes) / self.spec.name

    @property
    def train_num_samples(self) -> int:
        """Training crop length in samples."""
        default = self.spec.clip_seconds if self.task_spec is None else self.task_spec.eval_seconds
        return round((self.hparams.train_seconds or default) * self.hparams.sample_rate)

    @property
    def eval_num_samples(self) -> int:
        """Evaluation sub-clip length in samples (the pool uses the training crop length)."""
        if self.task_spec is None:
            return self.train_num_samples
        return round(self.task_spec.eval_seconds * self.hparams.sample_rate)

    def prepare_data(self) -> None:
        """Generate the task if it is not cached yet (a lock makes concurrent callers wait)."""
        ensure_hares_mini(self.hparams.root, [self.spec.name], split_sizes=self.hparams.split_sizes)

    def setup(self, stage: str | None = None) -> None:
        """Read the task's manifest (the data must exist: `prepare_data` generates it)."""
        if self._rows is not None:
            return
        if not is_complete(self.data_dir, self.split_sizes):
            raise FileNotFoundError(
                f"hares-mini task {self.spec.name!r} is not generated in {self.data_dir}; call "
                "prepare_data() first (the Trainer does) or ensure_hares_mini(root, tasks)"
            )
        rows = read_manifest(self.data_dir / MANIFEST, self.classes if self.task_spec else None)
        self._rows = {split: [row for row in rows if row.split == split] for split in self.split_sizes}

    def dataset(self, split: str, mode: Mode) -> ManifestAudioDataset:
        """The dataset of `split` as random crops ("random_crop") or evaluation sub-clips ("subclips")."""
        if self._rows is None:
            raise RuntimeError("HaresMiniDataModule.setup() must run before asking for a dataset or loader")
        if split not in self._rows:
            raise ValueError(
                f"hares-mini {self.spec.name!r} has no split {split!r}; its splits: {list(self._rows)}"
            )
        if (split, mode) not in self._datasets:
            label_type: LabelType = "none" if self.task_spec is None else self.task_spec.label_type
            self._datasets[split, mode] = ManifestAudioDataset(
                [(row.path, row.labels) for row in self._rows[split]],
                self.classes,
                label_type,
                sample_rate=self.hparams.sample_rate,
                num_samples=self.train_num_samples if mode == "random_crop" else self.eval_num_samples,
                mode=mode,
                on_error=self.hparams.on_error,
            )
        return self._datasets[split, mode]

    def _loader(self, dataset: ManifestAudioDataset, batch_size: int, shuffle: bool) -> DataLoader:
        workers = self.hparams.num_workers
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last=False,
            num_workers=workers,
            collate_fn=collate_audio,
            generator=torch.Generator().manual_seed(self.hparams.seed),
            persistent_workers=workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        """Shuffled random crops of the train split."""
        return self._loader(self.dataset("train", "random_crop"), self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        """Sub-clips of the valid split."""
        return self.subclip_dataloader("valid")

    def test_dataloader(self) -> DataLoader:
        """Sub-clips of the test split (the pool has none)."""
        return self.subclip_dataloader("test")

    def subclip_dataloader(self, split: str, batch_size: int | None = None) -> DataLoader:
        """Sub-clips of `split` in manifest order (not shuffled), e.g. for frozen-feature extraction."""
        return self._loader(
            self.dataset(split, "subclips"), batch_size or self.hparams.batch_size, shuffle=False
        )
