"""Mixup (Zhang et al., ICLR 2018) for fine-tuning: inputs and targets of a batch mixed with its reverse.

As timm's `Mixup` in batch mode (the Audio-MAE / BEATs fine-tuning recipes): one ratio
lambda ~ Beta(alpha, alpha) per batch, and sample i is mixed with sample B - 1 - i:
    x_i' = lambda x_i + (1 - lambda) x_{B-1-i},    y_i' = lambda y_i + (1 - lambda) y_{B-1-i}
with y one-hot (single-label) or multi-hot (multi-label), so the loss is binary cross-entropy, as
BEATs uses "when the mixup augmentation is employed". Waveforms are mixed in the time domain (as AST
mixes waveforms); a mixed sample is padding only where both sources are.
"""

from __future__ import annotations

import torch
from torch import Tensor


def sample_mixup_ratio(alpha: float) -> float:
    """One draw of lambda ~ Beta(alpha, alpha), alpha > 0, from torch's global generator (CLI-seeded)."""
    if alpha <= 0:
        raise ValueError(f"mixup alpha must be > 0 (0 disables mixup), got {alpha}")
    return float(torch.distributions.Beta(float(alpha), float(alpha)).sample())


def mixup(
    inputs: Tensor, targets: Tensor, ratio: float, padding_mask: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Mix `inputs[B, ...]` and float `targets[B, C]` with their batch-reversed copies at `ratio` (lambda).

    Returns `(mixed inputs, mixed targets, padding_mask & reversed padding_mask or None)`.
    """
    if targets.dim() != 2 or not targets.is_floating_point():
        raise ValueError(
            f"mixup needs float one-/multi-hot targets [B, C]; got {targets.dtype} {tuple(targets.shape)}"
        )
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mixup ratio must be in [0, 1], got {ratio}")
    mixed = ratio * inputs + (1.0 - ratio) * inputs.flip(0)
    mixed_targets = ratio * targets + (1.0 - ratio) * targets.flip(0)
    mask = None if padding_mask is None else padding_mask & padding_mask.flip(0)
    return mixed, mixed_targets, mask
