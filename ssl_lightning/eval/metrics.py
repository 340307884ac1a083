"""Clip-level metrics of the HARES protocol: sub-clip aggregation, top-1 accuracy, macro mAP and the
all-slots accuracy of slot-filling tasks (Fluent Speech Commands); and those of the DABS transfer tasks:
macro AUROC (CheXpert, ChestX-ray8), Spearman (STS-B) and Pearson (CoLA) correlation.

What is averaged over sub-clips are *probabilities*: softmax outputs for single-label tasks and
per-class sigmoid outputs for multi-label tasks (`LinearProbe.predict_scores` returns those). HARES
"averages the scores" of the sub-clips of a clip; averaging probabilities rather than logits keeps
one confident sub-clip from outvoting the others without bound.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor
from torchmetrics.functional import pearson_corrcoef, spearman_corrcoef
from torchmetrics.functional.classification import (
    binary_accuracy,
    binary_auroc,
    multiclass_accuracy,
    multilabel_average_precision,
)


def aggregate_subclips(
    scores: Tensor, clip_id: Tensor, labels: Tensor | None = None
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Mean of the sub-clip scores of each clip, clips sorted by id.

    Args:
        scores: [N, C] float scores (probabilities) of N sub-clips.
        clip_id: [N] integer id of the clip each sub-clip was cut from.
        labels: optional [N] int class ids or [N, C] multi-hot targets; every sub-clip of a clip
            must carry the same label.

    Returns:
        clip_scores [M, C], clip_labels ([M] or [M, C], None when `labels` is None), clip_ids [M]
        (sorted ascending) for the M distinct clips.
    """
    if scores.ndim != 2 or not scores.is_floating_point():
        raise ValueError(
            f"scores must be a float [N, C] tensor, got dtype {scores.dtype} shape {tuple(scores.shape)}"
        )
    num_subclips = scores.shape[0]
    if num_subclips == 0:
        raise ValueError("scores is empty: there are no sub-clips to aggregate")
    if clip_id.shape != (num_subclips,) or clip_id.is_floating_point() or clip_id.dtype == torch.bool:
        raise ValueError(
            f"clip_id must be an integer [N] tensor with N={num_subclips} (one id per score row), "
            f"got dtype {clip_id.dtype} shape {tuple(clip_id.shape)}"
        )
    clip_ids, inverse = torch.unique(clip_id, sorted=True, return_inverse=True)
    counts = torch.bincount(inverse, minlength=len(clip_ids)).to(scores.dtype)
    sums = torch.zeros(len(clip_ids), scores.shape[1], dtype=scores.dtype, device=scores.device)
    clip_scores = sums.index_add_(0, inverse, scores) / counts[:, None]
    if labels is None:
        return clip_scores, None, clip_ids
    if labels.shape[0] != num_subclips:
        raise ValueError(
            f"labels has {labels.shape[0]} rows but scores has {num_subclips}; pass one label per sub-clip"
        )
    clip_labels = labels.new_zeros((len(clip_ids), *labels.shape[1:]))
    clip_labels[inverse] = labels
    agree = (clip_labels[inverse] == labels).reshape(num_subclips, -1).all(dim=1)
    if not agree.all():
        bad = clip_id[~agree].unique()
        raise ValueError(
            f"sub-clips of clip_id {bad[:10].tolist()} carry different labels; every sub-clip must carry its "
            "clip's label (check the dataset's sub-clip expansion)"
        )
    return clip_scores, clip_labels, clip_ids


def accuracy(scores: Tensor, labels: Tensor) -> float:
    """Top-1 accuracy in [0, 1] of [M, C] scores against [M] integer class ids; or, for one binary output
    (DABS's binary tasks: one sigmoid output trained with BCE), of [M, 1] probabilities thresholded at 0.5
    against [M, 1] 0/1 targets."""
    if scores.ndim != 2:
        raise ValueError(f"accuracy needs [M, C] scores, got shape {tuple(scores.shape)}")
    if scores.shape[1] == 1 and labels.shape == scores.shape:
        _check_binary(labels, "accuracy")
        return binary_accuracy(scores[:, 0], labels[:, 0].long(), threshold=0.5).item()
    if labels.shape != scores.shape[:1] or labels.is_floating_point():
        raise ValueError(
            f"accuracy needs [M] integer class ids with M={scores.shape[0]}, got dtype {labels.dtype} shape "
            f"{tuple(labels.shape)}; multi-hot [M, C] targets go with metric 'mAP'"
        )
    num_classes = scores.shape[1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got min {labels.min()} max {labels.max()}")
    return multiclass_accuracy(scores, labels, num_classes=num_classes, average="micro", top_k=1).item()


def mean_average_precision(scores: Tensor, targets: Tensor) -> float:
    """Macro mean average precision in [0, 1] of [M, C] scores against [M, C] 0/1 targets.

    Average precision is computed per class (torchmetrics, same values as scikit-learn); the mean
    runs over the classes with at least one positive target only. AP is undefined for a class
    without positives (torchmetrics reports 0 and would drag the mean down), which happens when a
    small test split misses rare classes; scikit-learn's `average_precision_score` and the AudioSet
    evaluations likewise leave such classes out.
    """
    if scores.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"mAP needs [M, C] scores and [M, C] multi-hot targets, got {tuple(scores.shape)} and "
            f"{tuple(targets.shape)}; integer class ids go with metric 'accuracy'"
        )
    if not ((targets == 0) | (targets == 1)).all():
        raise ValueError("mAP targets must be 0/1 multi-hot; found other values")
    has_positive = targets.sum(dim=0) > 0
    if not has_positive.any():
        raise ValueError("mAP is undefined: no class has a positive target")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No positive samples found in target")
        per_class = multilabel_average_precision(
            scores, targets.long(), num_labels=scores.shape[1], average=None, thresholds=None
        )
    return per_class[has_positive].mean().item()


def _check_binary(targets: Tensor, metric: str) -> None:
    if not ((targets == 0) | (targets == 1)).all():
        raise ValueError(f"{metric} targets must be 0/1; found other values")


def auroc(scores: Tensor, targets: Tensor) -> float:
    """Macro area under the ROC curve in [0, 1] of [M, C] scores against [M, C] 0/1 targets.

    AUROC is computed per class (torchmetrics) and averaged over the classes whose targets hold both a 0
    and a 1 (it is undefined otherwise), as `mean_average_precision` leaves out classes without positives.
    DABS scores CheXpert and ChestX-ray8 this way (torchmetrics' AUROC, macro average).
    """
    if scores.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"AUROC needs [M, C] scores and [M, C] multi-hot targets, got {tuple(scores.shape)} and "
            f"{tuple(targets.shape)}"
        )
    _check_binary(targets, "AUROC")
    positives = targets.sum(dim=0)
    both = ((positives > 0) & (positives < targets.shape[0])).nonzero().flatten().tolist()
    if not both:
        raise ValueError("AUROC is undefined: no class has both positive and negative targets")
    per_class = [binary_auroc(scores[:, c], targets[:, c].long()) for c in both]
    return torch.stack(per_class).mean().item()


def _correlation(name: str, fn: Callable[[Tensor, Tensor], Tensor], scores: Tensor, targets: Tensor) -> float:
    """`fn` (a torchmetrics correlation) of one [M, 1] (or [M]) output against [M] (or [M, 1]) targets.

    A constant prediction has no correlation with anything: it scores 0 rather than NaN (a collapsed
    representation is then reported as uncorrelated). Constant targets are an error: no prediction could be
    scored on them.
    """
    preds, target = scores.reshape(-1).float(), targets.reshape(-1).float()
    one_column = scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1)
    if not one_column or target.shape != preds.shape:
        raise ValueError(
            f"{name} needs one output per item ([M] or [M, 1]) and M targets, got {tuple(scores.shape)} "
            f"and {tuple(targets.shape)}"
        )
    if len(target) < 2 or bool((target == target[0]).all()):
        raise ValueError(f"{name} is undefined on constant targets (got {len(target)} items)")
    if bool((preds == preds[0]).all()):
        return 0.0
    return fn(preds, target).item()


def spearman(scores: Tensor, targets: Tensor) -> float:
    """Spearman rank correlation in [-1, 1] of [M, 1] outputs against [M] targets (DABS: STS-B)."""
    return _correlation("Spearman correlation", spearman_corrcoef, scores, targets)


def pearson(scores: Tensor, targets: Tensor) -> float:
    """Pearson correlation in [-1, 1] of [M, 1] outputs against [M] (or [M, 1]) targets (DABS: CoLA, on the
    raw output of its one BCE logit against the 0/1 acceptability label)."""
    return _correlation("Pearson correlation", pearson_corrcoef, scores, targets)


def slot_ranges(slot_sizes: Sequence[int], num_classes: int) -> list[tuple[int, int]]:
    """(start, end) column ranges of consecutive slots of sizes `slot_sizes`, which must sum to C."""
    if not slot_sizes or any(size < 1 for size in slot_sizes) or sum(slot_sizes) != num_classes:
        raise ValueError(
            f"slot_sizes {list(slot_sizes)} must be positive and sum to the {num_classes} classes"
        )
    ends = list(itertools.accumulate(slot_sizes))
    return list(zip([0, *ends[:-1]], ends, strict=True))


def all_slots_accuracy(scores: Tensor, targets: Tensor, slot_sizes: Sequence[int]) -> float:
    """Fraction in [0, 1] of the M items whose every slot is right: [M, C] scores and [M, C] targets hold
    consecutive slots of sizes `slot_sizes` (C = their sum), each target slot one-hot; an item counts only
    when the arg-max of every slot's scores is its target (HARES' Fluent Speech Commands rule)."""
    if scores.ndim != 2 or targets.shape != scores.shape:
        raise ValueError(
            f"all-slots accuracy needs [M, C] scores and [M, C] slot targets, got {tuple(scores.shape)} and "
            f"{tuple(targets.shape)}"
        )
    right = torch.ones(scores.shape[0], dtype=torch.bool, device=scores.device)
    for start, end in slot_ranges(slot_sizes, scores.shape[1]):
        target = targets[:, start:end]
        if not (target.sum(dim=1) == 1).all():
            raise ValueError(f"slot columns {start}:{end} of the targets must be one-hot in every row")
        right &= scores[:, start:end].argmax(dim=1) == target.argmax(dim=1)
    return right.float().mean().item()


METRICS: dict[str, Callable[..., float]] = {
    "accuracy": accuracy,
    "mAP": mean_average_precision,
    "all_slots": all_slots_accuracy,
    "auroc": auroc,
    "spearman": spearman,
    "pearson": pearson,
}


def compute_metric(
    name: str, scores: Tensor, labels: Tensor, slot_sizes: Sequence[int] | None = None
) -> float:
    """Metric `name` (a key of `METRICS`; "all_slots" with its `slot_sizes`) of [M, C] scores against the
    matching labels."""
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose one of {sorted(METRICS)}")
    if (name == "all_slots") != (slot_sizes is not None):
        raise ValueError(f"slot_sizes go with metric 'all_slots' and only with it; metric {name!r}")
    return METRICS[name](scores, labels, *(() if slot_sizes is None else (slot_sizes,)))
