"""Pinned values of the warmup + cosine learning-rate multiplier."""

import math

import pytest
import torch

from ssl_lightning.nn.schedules import warmup_cosine, warmup_decay


def test_pinned_values():
    # W = 10 warmup steps, T = 110 total: the decay spans steps 10..110, its middle is step 60.
    assert warmup_cosine(0, 10, 110) == pytest.approx(0.1)
    assert warmup_cosine(4, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(9, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(10, 10, 110) == pytest.approx(1.0)
    assert warmup_cosine(35, 10, 110) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert warmup_cosine(60, 10, 110) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110) == pytest.approx(0.0)
    assert warmup_cosine(500, 10, 110) == pytest.approx(0.0)


def test_min_ratio_and_edge_lengths():
    assert warmup_cosine(60, 10, 110, min_ratio=0.2) == pytest.approx(0.6)
    assert warmup_cosine(110, 10, 110, min_ratio=0.2) == pytest.approx(0.2)
    assert warmup_cosine(0, 0, 100) == pytest.approx(1.0)  # no warmup: decay starts at once
    assert warmup_cosine(50, 0, 100) == pytest.approx(0.5)
    assert warmup_cosine(99, 100, 100) == pytest.approx(1.0)  # warmup only
    assert warmup_cosine(100, 100, 100, min_ratio=0.1) == pytest.approx(0.1)


def test_with_lambda_lr_the_first_update_uses_one_over_warmup():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=2.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, 4, 8))
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    expected = [0.5, 1.0, 1.5, 2.0] + [2.0 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert lrs == pytest.approx(expected)


@pytest.mark.parametrize(
    ("step", "warmup", "total", "min_ratio", "match"),
    [
        (-1, 0, 10, 0.0, "step must be >= 0"),
        (0, 11, 10, 0.0, "warmup_steps <= total_steps"),
        (0, 0, 0, 0.0, "total_steps > 0"),
        (0, 1, 10, 1.5, "min_ratio"),
    ],
)
def test_rejects_bad_arguments(step, warmup, total, min_ratio, match):
    with pytest.raises(ValueError, match=match):
        warmup_cosine(step, warmup, total, min_ratio)


def test_linear_decay_worked_values():
    # W = 10, T = 110: the decay covers 100 steps, so step 10 + k gives 1 - k / 100.
    assert warmup_decay(9, 10, 110, decay="linear") == pytest.approx(1.0)
    assert warmup_decay(35, 10, 110, decay="linear") == pytest.approx(0.75)
    assert warmup_decay(60, 10, 110, decay="linear") == pytest.approx(0.5)
    assert warmup_decay(60, 10, 110, min_ratio=0.2, decay="linear") == pytest.approx(0.6)
    assert warmup_decay(110, 10, 110, decay="linear") == pytest.approx(0.0)
    # Cosine and linear agree at the start, middle and end of the decay, and differ between.
    for step in (10, 60, 110):
        assert warmup_decay(step, 10, 110, decay="linear") == pytest.approx(warmup_cosine(step, 10, 110))
    assert warmup_decay(35, 10, 110, decay="linear") < warmup_cosine(35, 10, 110)


def test_unknown_decay_is_rejected():
    with pytest.raises(ValueError, match="decay must be one of"):
        warmup_decay(0, 0, 10, decay="step")


def test_tri_stage_worked_example() -> None:
    """W = 10, H = 80, T = 100 (decay 10 steps), init 0.01, final 0.05, computed by hand."""
    from ssl_lightning.nn.schedules import tri_stage

    assert tri_stage(0, 10, 80, 100) == pytest.approx(0.01)
    assert tri_stage(5, 10, 80, 100) == pytest.approx(0.01 + 0.99 * 0.5)
    assert tri_stage(10, 10, 80, 100) == pytest.approx(1.0)
    assert tri_stage(89, 10, 80, 100) == pytest.approx(1.0)
    assert tri_stage(90, 10, 80, 100) == pytest.approx(1.0)
    assert tri_stage(95, 10, 80, 100) == pytest.approx(0.05**0.5)  # halfway through the decay
    assert tri_stage(100, 10, 80, 100) == pytest.approx(0.05)
    assert tri_stage(500, 10, 80, 100) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="hold_steps"):
        tri_stage(0, 10, 95, 100)
