"""Class-balanced, seeded label-fraction subsets: the "1% / 10% labels" of semi-supervised evaluation.

Contrastive Quant (following SimCLR) fine-tunes with 1% or 10% of the labelled training images.
Here every class c with n_c training samples keeps `k_c = max(1, floor(fraction * n_c + 0.5))`
samples (the fraction rounded half up, at least one, at most n_c): CIFAR-100's 500 images per class
give 5 (1%) and 50 (10%); ImageNet's ~1,300 give 13 and 130, the sizes of SimCLR's subset files.

Which samples: one seeded random permutation of all N samples ranks the samples of every class,
and each class keeps its k_c first-ranked samples. The ranking depends on the seed and N only, so
for one seed the subsets are **nested**: the 1% subset lies inside the 10% subset, which lies
inside the full set (a larger fraction only adds samples). Different seeds give different
(overlapping) subsets. The image datamodules draw the subset from their train split only, so it is
always **disjoint** from the valid and test splits.
"""

from __future__ import annotations

import torch
from torch import Tensor


def check_fraction(fraction: float | None, name: str = "label_fraction") -> None:
    """Raise unless `fraction` is None (all labels) or a number in (0, 1]."""
    if fraction is None:
        return
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1:
        raise ValueError(
            f"{name} must be None (all labels) or a fraction in (0, 1], e.g. 0.01; got {fraction!r}"
        )


def class_balanced_counts(counts: Tensor, fraction: float) -> Tensor:
    """Samples kept per class: `[C]` class sizes n_c -> `[C]` int64
    `clamp(floor(fraction * n_c + 0.5), 1, n_c)` (0 for an empty class).

    Example: counts [500, 450, 3], fraction 0.01 -> [5, 5, 1].
    """
    check_fraction(fraction, "fraction")
    wanted = torch.floor(counts.double() * fraction + 0.5).long()
    return torch.minimum(wanted.clamp_min(1), counts.long())


def label_fraction_subset(labels: Tensor, fraction: float | None, seed: int = 0) -> Tensor:
    """Indices (sorted) of a class-balanced `fraction` of the samples with class ids `labels`.

    Args:
        labels: `[N]` integer class ids >= 0.
        fraction: share of each class to keep (see `class_balanced_counts`); None keeps every sample.
        seed: seeds the ranking of the samples (nested subsets across fractions for one seed).

    Returns:
        `[M]` int64 indices into `labels`, ascending, with M = sum over classes of k_c.
    """
    check_fraction(fraction)
    if labels.ndim != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(
            f"labels must be a 1-D integer tensor of class ids, got {labels.dtype} {tuple(labels.shape)}"
        )
    num_samples = labels.shape[0]
    if num_samples == 0:
        raise ValueError("labels is empty: there are no samples to draw a label subset from")
    if labels.min() < 0:
        raise ValueError(f"class ids must be >= 0, found {int(labels.min())}")
    labels = labels.long().cpu()
    if fraction is None or fraction == 1:
        return torch.arange(num_samples)
    counts = torch.bincount(labels)
    keep_per_class = class_balanced_counts(counts, fraction)
    priority = torch.randperm(num_samples, generator=torch.Generator().manual_seed(seed))
    by_class = priority[torch.argsort(labels[priority], stable=True)]
    class_start = torch.cumsum(counts, 0) - counts
    sorted_labels = labels[by_class]
    rank_in_class = torch.arange(num_samples) - class_start[sorted_labels]
    return by_class[rank_in_class < keep_per_class[sorted_labels]].sort().values


def fraction_name(fraction: float | None) -> str:
    """How reports name a label fraction: 0.01 -> "1% labels", 0.1 -> "10% labels", None -> "100% labels"."""
    check_fraction(fraction)
    percent = 100.0 if fraction is None else 100 * fraction
    return f"{percent:g}% labels"
