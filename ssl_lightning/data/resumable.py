"""Training loaders that a killed run resumes exactly: same batches, same per-sample random draws.

`ResumableSampler` turns a `DistributedSampler` (this rank's share of a `(seed, epoch)` order) into
`(index, item_seed)` pairs and can start past the batches an interrupted epoch already consumed.
`SeededItems` reads item `index` with torch's CPU generator seeded by `item_seed` (forked, so the
training step's global random stream is untouched), which makes a dataset's random crops a function
of `(seed, epoch, position)` alone: independent of prefetching, worker processes and restarts.
`ResumableDataLoader` is the DataLoader of both; its `state_dict()`/`load_state_dict()` (epoch and
batches consumed), which Lightning's fit loop saves in every checkpoint and restores on
`fit(ckpt_path=...)`, continue an interrupted epoch with its next batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

SEED_RANGE = 2**63 - 1
"""Item seeds are drawn in [0, SEED_RANGE)."""


class ResumableSampler(DistributedSampler):
    """`inner`'s indices for the epoch, each paired with a seed for the item's random draws.

    Lightning leaves a `DistributedSampler` in place under DDP, so every rank keeps `inner`'s share.
    The seeds of an epoch are drawn for all `total_size` positions from a generator seeded with
    `seed + epoch`; rank r takes positions r, r + R, ... as DistributedSampler does with the order.
    `skip` (set on resume) drops the first indices of the next iteration only.
    """

    def __init__(self, inner: DistributedSampler) -> None:
        super().__init__(inner.dataset, inner.num_replicas, inner.rank, shuffle=False, seed=inner.seed)
        self.inner = inner
        self.skip = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.inner.set_epoch(self.epoch)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        seeds = torch.randint(SEED_RANGE, (self.total_size,), generator=generator)
        pairs = list(zip(self.inner, seeds[self.rank :: self.num_replicas].tolist(), strict=True))
        start, self.skip = self.skip, 0
        return iter(pairs[start:])

    def __len__(self) -> int:
        return len(self.inner)


@contextmanager
def seeded_draws(seed: int) -> Iterator[None]:
    """Inside, torch's CPU generator starts from `seed`; after, it is as before (a fork: the caller's
    random stream, e.g. the training step's, is untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


class SeededItems(Dataset):
    """`dataset[index]` read with torch's CPU generator seeded by the item's seed (`(index, seed)` keys)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        index, seed = key
        with seeded_draws(seed):
            return self.dataset[index]


class ResumableDataLoader(DataLoader):
    """A DataLoader over `SeededItems` with a `ResumableSampler` that remembers how far its epoch got.

    A batch counts as consumed when it is handed out: Lightning's fit loop does not prefetch from a
    loader with a length, so at a checkpoint after step k the count is exactly the batches trained
    in the epoch, whatever the workers had read ahead. A new iterator
    continues the sampler's epoch after its consumed batches (Lightning may create the first one twice
    on resume), and starts at the first batch when the sampler has moved to another epoch.
    """

    sampler: ResumableSampler

    def __init__(self, dataset: SeededItems, sampler: ResumableSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.epoch = sampler.epoch
        self.consumed = 0

    def __iter__(self) -> Iterator[Any]:
        if self.sampler.epoch != self.epoch:
            self.epoch, self.consumed = self.sampler.epoch, 0
        self.sampler.skip = self.consumed * self.batch_size
        for batch in super().__iter__():
            self.consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        """The epoch and the number of its batches consumed."""
        return {"epoch": self.epoch, "consumed": self.consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue epoch `state["epoch"]` after its first `state["consumed"]` batches."""
        self.epoch, self.consumed = state["epoch"], state["consumed"]
        self.sampler.set_epoch(self.epoch)


class TrainLoaderState:
    """LightningDataModule mixin: the train loader's state is also saved in the datamodule's own state
    and handed to the loader that `train_dataloader` builds next (`resumed`).

    Lightning restores loader states only into the loader its fit loop sets up at fit start; a recipe
    with `max_epochs` has it set up earlier (`estimated_stepping_batches` in `configure_optimizers`,
    before the checkpoint's loop state is read), and Lightning's copy is then skipped. The datamodule's
    state is restored before `configure_optimizers`. Restoring twice is harmless (the same state).
    """

    _train_loader: Any = None
    _train_loader_state: dict[str, Any] | None = None
    batch_size: int
    num_workers: int
    seed: int
    trainer: L.Trainer | None

    def resumable_train_loader(self, dataset: Dataset, collate_fn: Any = None) -> ResumableDataLoader:
        """`dataset` in a `(seed, epoch)` shuffle over the trainer's ranks, `batch_size` items a batch
        (`collate_fn` None: DataLoader's default), `resumed` from the restored state."""
        return self.resumed(
            resumable_loader(
                dataset,
                shuffled(dataset, self.seed, self.trainer),
                self.batch_size,
                self.seed,
                num_workers=self.num_workers,
                collate_fn=collate_fn,
                persistent_workers=self.num_workers > 0,
            )
        )

    def resumed(self, loader: Any) -> Any:
        """`loader` continued from the restored state, if any; kept for `state_dict`."""
        if self._train_loader_state is not None:
            loader.load_state_dict(self._train_loader_state)
            self._train_loader_state = None
        self._train_loader = loader
        return loader

    def state_dict(self) -> dict[str, Any]:
        """The train loader's state (empty before there is one)."""
        return {} if self._train_loader is None else {"train_loader": self._train_loader.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the train loader's state for the next `train_dataloader()`."""
        self._train_loader_state = state_dict.get("train_loader")


def resumable_loader(
    dataset: Dataset, sampler: DistributedSampler, batch_size: int, seed: int, **kwargs: Any
) -> ResumableDataLoader:
    """A `ResumableDataLoader` of `dataset` in `sampler`'s order (`kwargs` go to DataLoader); `seed` seeds
    the loader's own generator, from which DataLoader draws its worker seeds."""
    return ResumableDataLoader(
        SeededItems(dataset),
        ResumableSampler(sampler),
        batch_size=batch_size,
        drop_last=False,
        generator=torch.Generator().manual_seed(seed),
        **kwargs,
    )


def shuffled(dataset: Dataset, seed: int, trainer: L.Trainer | None) -> DistributedSampler:
    """A `(seed, epoch)` shuffle of `dataset`, split across `trainer`'s ranks (one share without one)."""
    world, rank = (1, 0) if trainer is None else (trainer.world_size, trainer.global_rank)
    return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
