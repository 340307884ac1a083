"""BYOL-A views of normalised log-mel spectrograms (Niizumi et al., IJCNN 2021), or BYOL-A + RQ.

One call makes one view of every spectrogram (`nttcslab/byol-a: train.py: AugmentationModule` and
`BYOLALearner`), batched on the device:
    1. segment   a random `segment_frames` segment per sample when the input is longer (96 frames =
                 0.95 s at hop 160). The official code crops 0.95 s of waveform once per item, so both
                 views share it; to reproduce that, let the datamodule crop 0.95 s clips (then no
                 segment is cut here). Longer inputs give each view its own segment.
    2. Mixup     log-mixup-exp with a FIFO memory of past examples (`MemoryMixup`, ratio 0.4, 2048), or,
                 with `rq_bins`, Randomized Quantization per mel bin instead (the "BYOL-A w/ RQ" setting
                 of Wu et al., ICCV 2023: 5 bins).
    3. RandomResizeCrop  (`RandomResizeCrop`: canvas (1.0, 1.5), mel and frame scales (0.6, 1.5)).
    4. post-norm standardise the view batch with its own scalar mean and std (std clamped to >= eps).
The pre-norm (dataset statistics) is the encoder's `spectrogram`; the official post-norm standardises
the two views' 2B spectrograms together, here each view's B (one view per call).

Segment, crop and post-norm apply in every mode (the two-view methods' validation loss draws them
from a seeded generator); Mixup and RQ only in training mode, and eval calls leave the memory alone.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ssl_lightning.augment.memory_mixup import MemoryMixup
from ssl_lightning.augment.random_resize_crop import RandomResizeCrop
from ssl_lightning.augment.randomized_quantization import RandomizedQuantization
from ssl_lightning.augment.segments import random_segment


def standardize_batch(x: Tensor) -> Tensor:
    """`(x - mean) / max(std, eps)` with one scalar mean and (unbiased) std over the whole batch."""
    std = x.std().clamp(min=torch.finfo(x.dtype).eps)
    return (x - x.mean()) / std


class ByolAViews(nn.Module):
    """View maker for BYOL-A: `spec[B, frames, mels]` (the encoder's normalised log-mel) ->
    `[B, min(frames, segment_frames), mels]`, one random view per call.

    Args:
        segment_frames: frames per view (BYOL-A: 96).
        mixup_ratio: Mixup alpha ~ U(0, mixup_ratio) (BYOL-A: 0.4).
        memory_size: Mixup FIFO memory in examples (BYOL-A: 2048).
        rq_bins: Randomized Quantization bins per mel bin instead of Mixup (RQ paper: 5); None for Mixup.
        virtual_crop_scale, freq_scale, time_scale: `RandomResizeCrop` ranges (BYOL-A defaults).
    """

    domain: ClassVar[str] = "spectrogram"

    def __init__(
        self,
        segment_frames: int = 96,
        mixup_ratio: float = 0.4,
        memory_size: int = 2048,
        rq_bins: int | None = None,
        virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
    ) -> None:
        super().__init__()
        if not isinstance(segment_frames, int) or segment_frames < 1:
            raise ValueError(f"segment_frames must be a positive int, got {segment_frames!r}")
        self.segment_frames = segment_frames
        self.mixup = MemoryMixup(mixup_ratio, memory_size) if rq_bins is None else None
        self.rq = None if rq_bins is None else RandomizedQuantization(num_bins=rq_bins, channel_dim=-1)
        self.resize_crop = RandomResizeCrop(virtual_crop_scale, freq_scale, time_scale)

    def forward(self, spec: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One view `[B, min(frames, segment_frames), mels]` of every normalised log-mel `spec`."""
        if spec.dim() != 3 or not spec.is_floating_point():
            raise ValueError(
                f"ByolAViews needs a float log-mel [B, frames, mels] (encoder.spectrogram(waveform)); "
                f"got dtype {spec.dtype}, shape {tuple(spec.shape)}"
            )
        view = random_segment(spec, self.segment_frames, generator)
        view = self.mixup(view, generator) if self.mixup is not None else self.rq(view, generator)
        return standardize_batch(self.resize_crop(view, generator))
