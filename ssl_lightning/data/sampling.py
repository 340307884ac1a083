"""Weighted sampling of training clips: inverse label-frequency weights and a DDP-aware weighted sampler.

AudioSet's class frequencies span four orders of magnitude ("Speech" and "Music" are on most clips).
AST / PSLA (YuanGongND/psla `src/gen_weight_file.py`), followed by the BEATs AS-2M fine-tuning, draw
training clips with replacement, with clip weight = the sum over the clip's labels of 1 / (number of
training clips carrying that label). Their constant factor (1000 / (n + 0.01)) does not change the
draw. SUPERB's keyword spotting (KS1) balances its 12 classes the same way (weight N / n_class).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DistributedSampler

MAX_CATEGORIES = 2**24
"""`torch.multinomial` draws from at most 2^24 categories."""


def inverse_frequency_weights(item: Tensor, label: Tensor, num_items: int) -> Tensor:
    """Sampling weight of every item: w_i = sum over the labels c of item i of 1 / n_c.

    Args:
        item: int64 [M], the item of each (item, label) pair (e.g. `ManifestAudioDataset.label_pairs()`).
        label: int64 [M], the class of each pair; n_c is the number of pairs with class c.
        num_items: N, the number of items.
    Returns:
        float64 [N] weights (every item has at least one label, so all are positive).
    Raises:
        ValueError: mismatched or out-of-range indices, or an item without any label (it could never be
            drawn; the message names how many and the first one).
    """
    if item.ndim != 1 or item.shape != label.shape:
        raise ValueError(
            f"item and label must be 1-D of the same length, got {tuple(item.shape)} and {tuple(label.shape)}"
        )
    if item.numel() and (item.min() < 0 or item.max() >= num_items or label.min() < 0):
        raise ValueError(
            f"item indices must lie in [0, {num_items}) and labels be >= 0; got items in "
            f"[{int(item.min())}, {int(item.max())}], labels from {int(label.min())}"
        )
    class_count = torch.bincount(label).double()
    weights = torch.bincount(item, weights=class_count.reciprocal()[label], minlength=num_items)
    unlabeled = torch.nonzero(weights == 0).flatten()
    if unlabeled.numel():
        raise ValueError(
            f"{unlabeled.numel()} of {num_items} items have no label (e.g. item {int(unlabeled[0])}) and "
            "would never be drawn; remove them or give them a label before weighted sampling"
        )
    return weights


def _world(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    """(num_replicas, rank), each defaulting to torch.distributed's when initialised, else (1, 0)."""
    initialized = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if initialized else 1
    if rank is None:
        rank = dist.get_rank() if initialized else 0
    return num_replicas, rank


class WeightedDistributedSampler(DistributedSampler):
    """Seeded weighted draw with replacement, shared out between DDP ranks.

    Each epoch every rank draws the same `total_size` indices (N rounded up to a multiple of the number
    of replicas R) with `torch.multinomial(weights, total_size, replacement=True)` and a generator seeded
    with `seed + epoch`; rank r keeps draw positions r, r + R, r + 2R, ...: disjoint shares of
    `num_samples = total_size / R` indices that together are the whole draw. `set_epoch` (Lightning
    calls it before every epoch) selects the next draw. Being a `DistributedSampler`, it is left alone
    by Lightning's `use_distributed_sampler`, which would otherwise wrap it in a second split by rank.

    Args:
        weights: [N] non-negative, finite weights, not all zero (need not sum to 1).
        num_replicas: R (default: torch.distributed's world size, 1 without a process group).
        rank: this process's rank (default: torch.distributed's, 0 without a process group).
        seed: base seed; must be the same on every rank.
    """

    def __init__(
        self, weights: Tensor, num_replicas: int | None = None, rank: int | None = None, seed: int = 0
    ) -> None:
        weights = torch.as_tensor(weights, dtype=torch.float64)
        if weights.ndim != 1 or not 0 < weights.numel() <= MAX_CATEGORIES:
            raise ValueError(
                f"weights must be 1-D with 1 to {MAX_CATEGORIES} entries, got shape {tuple(weights.shape)}"
            )
        if not torch.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise ValueError("weights must be finite and >= 0 with a positive sum")
        num_replicas, rank = _world(num_replicas, rank)
        super().__init__(range(weights.numel()), num_replicas=num_replicas, rank=rank, seed=seed)
        self.weights = weights

    def draw(self) -> Tensor:
        """int64 [total_size]: this epoch's whole draw, identical on every rank."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.multinomial(self.weights, self.total_size, replacement=True, generator=generator)

    def __iter__(self) -> Iterator[int]:
        """This rank's `num_samples` indices of the epoch's draw."""
        return iter(self.draw()[self.rank :: self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.num_samples
