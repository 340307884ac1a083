"""Learning-rate multipliers, per optimisation step (no Lightning dependency).

Use with `torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: warmup_cosine(step, W, T))`:
LambdaLR evaluates the multiplier at step 0 on construction and after each `scheduler.step()`,
so the k-th optimizer update (k = 0, 1, ...) runs at `peak_lr * warmup_cosine(k, W, T)`.
"""

from __future__ import annotations

import math

DECAYS = ("cosine", "linear")


def warmup_decay(
    step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0, decay: str = "cosine"
) -> float:
    """Linear warmup from 0 to 1, then `decay` ("cosine" or "linear") from 1 to `min_ratio`.

    Exactly, for W = `warmup_steps`, T = `total_steps` and progress p = (step - W) / (T - W):
        step < W:        (step + 1) / W                 (step 0 -> 1/W, step W-1 -> 1; no update at lr 0)
        W <= step <= T:  min_ratio + (1 - min_ratio) * f(p), f(p) = (1 + cos(pi * p)) / 2 (cosine: HARES,
                         data2vec, BEATs fine-tuning) or 1 - p (linear: BEATs pre-training and tokenizer
                         training, Table 4)
        step >= T:       min_ratio                      (stays there if a loop runs past T)
    so step W gives 1, the middle of the decay (1 + min_ratio) / 2 and step T gives min_ratio.
    With W = 0 the decay starts at step 0; with W = T the multiplier is 1 until step T.

    Args:
        step: 0-based index of the optimizer update about to be taken.
        warmup_steps: W >= 0.
        total_steps: T >= W, T > 0: the length of the whole schedule.
        min_ratio: final multiplier in [0, 1].
        decay: shape of the decay after warmup.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if total_steps <= 0 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(
            f"need 0 <= warmup_steps <= total_steps and total_steps > 0, got warmup_steps={warmup_steps}, "
            f"total_steps={total_steps}; shorten the warmup or lengthen the schedule"
        )
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must be in [0, 1], got {min_ratio}")
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return min_ratio
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    shape = 0.5 * (1.0 + math.cos(math.pi * progress)) if decay == "cosine" else 1.0 - progress
    return min_ratio + (1.0 - min_ratio) * shape


def tri_stage(
    step: int,
    warmup_steps: int,
    hold_steps: int,
    total_steps: int,
    final_ratio: float = 0.05,
    init_ratio: float = 0.01,
) -> float:
    """fairseq's tri-stage schedule (wav2vec 2.0, data2vec speech): linear warmup from `init_ratio` to 1,
    hold at 1, then exponential decay to `final_ratio` at `total_steps` (and `final_ratio` after).

    Exactly, for W = `warmup_steps`, H = `hold_steps`, T = `total_steps`, D = T - W - H:
        step < W:            init_ratio + (1 - init_ratio) * step / W
        W <= step < W + H:   1
        W + H <= step < T:   exp(ln(final_ratio) * (step - W - H) / D)
        step >= T:           final_ratio
    data2vec speech: W, H, D = 3%, 90%, 7% of the updates, init 0.01, final 0.05.
    """
    if step < 0 or warmup_steps < 0 or hold_steps < 0 or warmup_steps + hold_steps > total_steps:
        raise ValueError(
            f"need step >= 0 and 0 <= warmup_steps + hold_steps <= total_steps, got step={step}, "
            f"warmup_steps={warmup_steps}, hold_steps={hold_steps}, total_steps={total_steps}"
        )
    if not 0.0 < final_ratio <= 1.0 or not 0.0 <= init_ratio <= 1.0:
        raise ValueError(
            f"need final_ratio in (0, 1] and init_ratio in [0, 1], got {final_ratio}, {init_ratio}"
        )
    if step < warmup_steps:
        return init_ratio + (1.0 - init_ratio) * step / warmup_steps
    if step < warmup_steps + hold_steps:
        return 1.0
    if step >= total_steps:
        return final_ratio
    decay_steps = total_steps - warmup_steps - hold_steps
    return math.exp(math.log(final_ratio) * (step - warmup_steps - hold_steps) / decay_steps)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """`warmup_decay` with the cosine decay."""
    return warmup_decay(step, warmup_steps, total_steps, min_ratio, "cosine")
