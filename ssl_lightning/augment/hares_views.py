"""Waveform views of the HARES SimCLR setting (Wang et al., "Towards learning universal audio
representations", ICASSP 2022: shared/papers/hares_universal_audio_representations.txt).

The paper: "we randomly crop 3-second windows for training", "example mixing", "the example mixing
ratio is sampled on the fly from the beta(5, 2) distribution". One call makes one view of every clip:
    1. crop  a random `crop_seconds` window per sample (clips no longer than that are kept whole);
    2. mix   view_i = lambda_i * crop_i + (1 - lambda_i) * crop_j, lambda_i ~ Beta(5, 2) per sample
             (mean 5/7: the clip's own crop dominates), where j = (i - s) mod B, the batch rolled by a
             shift s drawn uniformly from {1, ..., B - 1} per call (the paper does not name the partner).
Mixing waveforms mixes the signals (the paper does not say in which domain it mixes); the log-mel
front-end (80 mels, 25 ms windows, 10 ms hop, per-spectrogram standardisation) belongs to the encoder.

Crop and mixing are stateless and apply in every mode (the two-view methods' validation loss draws
them from a seeded generator).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from ssl_lightning.augment.sampling import beta_integer, random_offsets
from ssl_lightning.augment.segments import random_segment


def mix_with_rolled(x: Tensor, ratio: Tensor, shift: Tensor) -> Tensor:
    """`ratio[B, 1] * x + (1 - ratio) * x.roll(shift, 0)` for `x[B, T]` and an int64 scalar tensor `shift`
    (no host sync): sample i mixed with sample (i - shift) mod B."""
    partner = (torch.arange(x.shape[0], device=x.device) - shift) % x.shape[0]
    return torch.lerp(x[partner], x, ratio)


class HaresViews(nn.Module):
    """View maker for HARES SimCLR: `waveform[B, T]` -> `[B, min(T, crop)]`, one random view per call.

    Args:
        crop_seconds: window length (HARES: 3 s).
        sample_rate: of the waveforms.
        mix_beta: integer (a, b) of the Beta law of the own-clip ratio (HARES: (5, 2)); None: no mixing.
    """

    domain: ClassVar[str] = "waveform"

    def __init__(
        self, crop_seconds: float = 3.0, sample_rate: int = 16000, mix_beta: tuple[int, int] | None = (5, 2)
    ) -> None:
        super().__init__()
        if crop_seconds <= 0 or sample_rate <= 0:
            raise ValueError(
                f"crop_seconds and sample_rate must be positive, got {crop_seconds!r} and {sample_rate!r}"
            )
        if mix_beta is not None and not (
            len(mix_beta) == 2 and all(isinstance(v, int) and v >= 1 for v in mix_beta)
        ):
            raise ValueError(f"mix_beta must be None or two ints >= 1 (HARES: (5, 2)), got {mix_beta!r}")
        self.crop_samples = round(crop_seconds * sample_rate)
        self.mix_beta = None if mix_beta is None else (mix_beta[0], mix_beta[1])

    def forward(self, waveform: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One view `[B, min(T, crop_samples)]` of every clip of `waveform[B, T]`."""
        if waveform.dim() != 2 or not waveform.is_floating_point():
            raise ValueError(
                f"HaresViews needs float waveforms [B, T]; got dtype {waveform.dtype}, "
                f"shape {tuple(waveform.shape)}"
            )
        view = random_segment(waveform, self.crop_samples, generator)
        batch = view.shape[0]
        if self.mix_beta is None or batch == 1:
            return view
        ratio = beta_integer(*self.mix_beta, (batch, 1), view.device, generator).to(view.dtype)
        shift = 1 + random_offsets(1, batch - 2, view.device, generator)[0]
        return mix_with_rolled(view, ratio, shift)

    def extra_repr(self) -> str:
        return f"crop_samples={self.crop_samples}, mix_beta={self.mix_beta}"
