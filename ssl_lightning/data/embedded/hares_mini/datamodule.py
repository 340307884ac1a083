"""`HaresMiniDataModule`: one hares-mini task (or the unlabeled pool) as a LightningDataModule."""

from __future__ import annotations

from pathlib import Path

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip
from ssl_lightning.data.embedded.hares_mini.build import (
    MANIFEST,
    ensure_hares_mini,
    hares_mini_dir,
    is_complete,
    resolve_split_sizes,
)
from ssl_lightning.data.embedded.hares_mini.registry import PoolSpec, TaskSpec, get_spec
from ssl_lightning.data.manifest import OnError, read_manifest


class HaresMiniDataModule(AudioClassificationDataModule):
    """Serves one hares-mini task, generating it on first use (`prepare_data`).

    Training batches are random crops of `train_seconds` (default: the task's `eval_seconds`; the
    whole 2 s clip for the pool), shuffled with a generator seeded by `seed`. Validation, test and
    `subclip_dataloader` batches are the contiguous sub-clips of `eval_seconds` of every clip, in
    manifest order, with `clip_id` telling which clip each sub-clip belongs to. Batches follow the
    contract of docs/architecture.md (`audio` [B, T], `padding_mask` [B, T], `label`, `clip_id`);
    the pool's batches carry no `label` (and its sub-clips are as long as its training crops).

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
        on_error: OnError = "raise",
        seed: int = 0,
        split_sizes: dict[str, int] | None = None,
    ) -> None:
        spec = get_spec(task)
        if isinstance(spec, TaskSpec):
            clip_seconds = spec.eval_seconds
        else:
            clip_seconds = spec.clip_seconds if train_seconds is None else train_seconds
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds=train_seconds
        )
        self.save_hyperparameters()
        # kept as attributes, not read back from hparams: a datamodule built inside another one's __init__
        # under LightningCLI gets the outer one's hyper-parameters from save_hyperparameters()
        self.root, self.requested_split_sizes = root, split_sizes
        self.spec: TaskSpec | PoolSpec = spec
        self.split_sizes = resolve_split_sizes(self.spec, split_sizes)

    @property
    def task_spec(self) -> TaskSpec | None:
        """The task's `TaskSpec`; None for the pool."""
        return self.spec if isinstance(self.spec, TaskSpec) else None

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
        return hares_mini_dir(self.root, self.requested_split_sizes) / self.spec.name

    def prepare_data(self) -> None:
        """Generate the task if it is not cached yet (a lock makes concurrent callers wait)."""
        ensure_hares_mini(self.root, [self.spec.name], split_sizes=self.requested_split_sizes)

    def read_splits(self) -> dict[str, list[Clip]]:
        """The task's manifest rows per split (the data must exist: `prepare_data` generates it)."""
        if not is_complete(self.data_dir, self.split_sizes):
            raise FileNotFoundError(
                f"hares-mini task {self.spec.name!r} is not generated in {self.data_dir}; call "
                "prepare_data() first (the Trainer does) or ensure_hares_mini(root, tasks)"
            )
        rows = read_manifest(self.data_dir / MANIFEST, self.classes if self.task_spec else None)
        return {
            split: [(row.path, row.labels) for row in rows if row.split == split]
            for split in self.split_sizes
        }
