"""Frozen-feature extraction: run an embedding function once over a split and cache the result."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class FeatureSet:
    """Cached embeddings of one split, one row per sub-clip.

    Attributes:
        features: [N, D] float32 CPU embeddings.
        labels: [N] int64 class ids (single-label) or [N, C] float multi-hot targets (multi-label).
        clip_id: [N] int64 id of the clip each sub-clip belongs to.
    """

    features: Tensor
    labels: Tensor
    clip_id: Tensor

    def __post_init__(self) -> None:
        if self.features.ndim != 2:
            raise ValueError(f"FeatureSet.features must be [N, D], got shape {tuple(self.features.shape)}")
        n = self.features.shape[0]
        if self.labels.shape[:1] != (n,) or self.clip_id.shape != (n,):
            raise ValueError(
                f"FeatureSet needs one label and one clip_id per feature row (N={n}), got labels "
                f"{tuple(self.labels.shape)} and clip_id {tuple(self.clip_id.shape)}"
            )

    def __len__(self) -> int:
        """Number of sub-clips N."""
        return self.features.shape[0]

    @property
    def num_clips(self) -> int:
        """Number of distinct clips."""
        return int(self.clip_id.unique().numel())


def _to_device(batch: dict, device: torch.device) -> dict:
    """The batch with its tensors (and lists of tensors, e.g. `views`) on `device`."""

    def move(value: object) -> object:
        if isinstance(value, Tensor):
            return value.to(device, non_blocking=True)
        if isinstance(value, list | tuple):
            return type(value)(move(v) for v in value)
        return value

    return {key: move(value) for key, value in batch.items()}


def _check_batch(batch: object, index: int) -> int:
    """Batch size B of a valid evaluation batch (a dict with `label` and `clip_id`), else a clear error."""
    if not isinstance(batch, dict):
        raise TypeError(f"batch {index} is a {type(batch).__name__}; evaluation dataloaders must yield dicts")
    missing = {"label", "clip_id"} - batch.keys()
    if missing:
        raise KeyError(f"batch {index} lacks key(s) {sorted(missing)}; it has {sorted(batch)}")
    clip_id, label = batch["clip_id"], batch["label"]
    if clip_id.ndim != 1 or clip_id.is_floating_point():
        raise ValueError(
            f"batch {index}: clip_id must be an int64 [B] tensor, got {clip_id.dtype} {tuple(clip_id.shape)}"
        )
    if label.shape[:1] != clip_id.shape or label.ndim not in (1, 2):
        raise ValueError(
            f"batch {index}: label must be [B] class ids or [B, C] multi-hot with B={clip_id.shape[0]}, "
            f"got shape {tuple(label.shape)}"
        )
    return clip_id.shape[0]


def extract_features(
    embed_fn: Callable[[dict], Tensor],
    dataloader: Iterable[dict],
    device: str | torch.device = "cpu",
    progress: bool = False,
    desc: str = "",
) -> FeatureSet:
    """Embed every batch of `dataloader` with `embed_fn` (frozen, under inference mode).

    Args:
        embed_fn: batch dict on `device` -> [B, D] embeddings (e.g. `SSLMethod.embed` in eval mode).
        dataloader: yields batch dicts with `audio` [B, T], `padding_mask` [B, T], `label` [B] or
            [B, C], `clip_id` [B] (architecture.md batch contract).
        device: where batches go before `embed_fn`.
        progress: show a tqdm progress bar labelled `desc`.

    Returns:
        FeatureSet with [N, D] float32 CPU features, the labels and clip ids of every sub-clip.
    """
    device = torch.device(device)
    if progress:
        from tqdm.auto import tqdm

        dataloader = tqdm(dataloader, desc=desc or "extracting features", leave=False)
    features, labels, clip_ids = [], [], []
    dim = None
    for index, batch in enumerate(dataloader):
        batch_size = _check_batch(batch, index)
        with torch.inference_mode():
            embedding = embed_fn(_to_device(batch, device))
        if not isinstance(embedding, Tensor) or embedding.ndim != 2 or embedding.shape[0] != batch_size:
            got = tuple(embedding.shape) if isinstance(embedding, Tensor) else type(embedding).__name__
            raise ValueError(f"embed_fn must return [B, D] with B={batch_size} for batch {index}, got {got}")
        if dim is not None and embedding.shape[1] != dim:
            raise ValueError(f"embed_fn returned D={embedding.shape[1]} for batch {index} but D={dim} before")
        dim = embedding.shape[1]
        finite = torch.isfinite(embedding).all(dim=1)
        if not finite.all():
            rows = (~finite).nonzero().flatten()[:10].tolist()
            raise ValueError(
                f"embed_fn returned non-finite values (NaN/inf) for batch {index}, rows {rows} "
                f"(clip_id {batch['clip_id'][rows].tolist()}); check the audio of those clips and the model"
            )
        features.append(embedding.float().cpu())
        labels.append(batch["label"].cpu())
        clip_ids.append(batch["clip_id"].cpu())
    if not features:
        raise ValueError(f"dataloader {desc!r} yielded no batches; the split is empty")
    # torch.cat outside inference mode gives normal tensors that autograd (the probe) may use.
    return FeatureSet(torch.cat(features), torch.cat(labels), torch.cat(clip_ids).long())
