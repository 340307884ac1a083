"""Roll augmentation (BEATs Table 4, from Audio-MAE's fine-tuning): a random circular time shift per clip."""

from __future__ import annotations

import torch
from torch import Tensor


def random_roll(
    waveform: Tensor, padding_mask: Tensor | None = None, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor | None]:
    """Shift every row of `waveform[B, T]` circularly by its own uniform offset in {0, ..., T - 1}:
    `out[b, t] = waveform[b, (t - shift_b) mod T]`. The padding mask `[B, T]` moves with the samples."""
    if waveform.dim() != 2:
        raise ValueError(f"random_roll expects waveforms [B, T]; got shape {tuple(waveform.shape)}")
    batch, length = waveform.shape
    device = generator.device if generator is not None else waveform.device
    shift = torch.randint(length, (batch, 1), generator=generator, device=device).to(waveform.device)
    index = (torch.arange(length, device=waveform.device) - shift) % length
    rolled_mask = None if padding_mask is None else padding_mask.gather(1, index)
    return waveform.gather(1, index), rolled_mask
