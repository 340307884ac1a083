"""Mixup (batch mode, reversed partner) and roll augmentation: worked examples and invariants."""

from __future__ import annotations

import pytest
import torch

from ssl_lightning.augment.mixup import mixup, sample_mixup_ratio
from ssl_lightning.augment.roll import random_roll


def test_mixup_worked_example():
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    mask = torch.tensor([[False, True], [False, False], [True, True]])
    mixed, mixed_targets, mixed_mask = mixup(inputs, targets, 0.25, mask)
    # row 0 = 0.25 * row 0 + 0.75 * row 2; row 1 mixes with itself (middle of an odd batch)
    assert torch.equal(mixed, torch.tensor([[4.0, 5.0], [3.0, 4.0], [2.0, 3.0]]))
    assert torch.equal(mixed_targets, torch.tensor([[0.25, 0.75], [0.0, 1.0], [0.75, 0.25]]))
    assert torch.equal(mixed_mask, torch.tensor([[False, True], [False, False], [False, True]]))
    assert mixup(inputs, targets, 0.25)[2] is None


def test_mixup_targets_stay_distributions_and_errors():
    targets = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 2]), 3).float()
    _, mixed_targets, _ = mixup(torch.randn(4, 8), targets, 0.7)
    assert torch.allclose(mixed_targets.sum(1), torch.ones(4))
    with pytest.raises(ValueError, match="float one-/multi-hot"):
        mixup(torch.randn(4, 8), torch.tensor([0, 2, 1, 2]), 0.7)
    with pytest.raises(ValueError, match="ratio"):
        mixup(torch.randn(4, 8), targets, 1.5)


def test_mixup_ratio_follows_beta_alpha_alpha():
    torch.manual_seed(0)
    draws = torch.tensor([sample_mixup_ratio(0.8) for _ in range(4000)])
    assert draws.min() >= 0 and draws.max() <= 1
    assert draws.mean().item() == pytest.approx(0.5, abs=0.02)
    # Var Beta(a, a) = 1 / (4 (2a + 1)) = 0.0962 for a = 0.8 (0.0116 for a = 10: concentration matters)
    assert draws.var().item() == pytest.approx(1 / (4 * 2.6), abs=0.006)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        sample_mixup_ratio(0.0)


def test_roll_is_a_circular_shift_per_row_and_moves_the_mask():
    waveform = torch.arange(24.0).view(3, 8)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    mask[:, 6:] = True
    rolled, rolled_mask = random_roll(waveform, mask, torch.Generator().manual_seed(3))
    shifts = []
    for row in range(3):
        shift = int((rolled[row] == waveform[row, 0]).nonzero())
        assert torch.equal(rolled[row], torch.roll(waveform[row], shift))
        assert torch.equal(rolled_mask[row], torch.roll(mask[row], shift))
        shifts.append(shift)
    assert len(set(shifts)) > 1  # per-sample shifts (seed 3 draws distinct ones)
    again, _ = random_roll(waveform, mask, torch.Generator().manual_seed(3))
    assert torch.equal(again, rolled)
    assert random_roll(waveform)[1] is None
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        random_roll(torch.zeros(2, 1, 8))
