"""Optimizers and schedules shared by every method.

Optimizers come from timm's factory (AdamW, LARS, LAMB, SGD, ...), which already excludes biases
and norm parameters (every 1-D parameter) from weight decay and builds layer-wise LR decay groups
from a model's `group_matcher`. The schedule is linear warmup then cosine decay, per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import timm.optim
import torch
from torch import nn

from ssl_lightning.nn.schedules import DECAYS, tri_stage, warmup_decay

SCHEDULES = (*DECAYS, "tri_stage")


@dataclass
class OptimizerConfig:
    """What a recipe says about optimisation (the `optim:` block of a method).

    Args:
        name: any optimizer name of `timm.optim.list_optimizers()` ("adamw", "lars", "lamb", "sgd", ...).
        lr: peak learning rate, reached at the end of warmup.
        weight_decay: applied to weights with 2+ dims only; biases and norms get none.
        betas: Adam-family betas (BEATs uses 0.9/0.98).
        momentum: SGD/LARS momentum.
        layer_decay: layer-wise LR decay factor (e.g. 0.75 for fine-tuning); the model needs a
            timm-style `group_matcher` for it to group layers.
        warmup_steps: linear warmup length; a value below 1 is a fraction of the total steps.
        min_lr_ratio: final LR as a fraction of the peak LR.
        schedule: decay after warmup, "cosine" or "linear" (BEATs pre-training, Table 4), or "tri_stage"
            (fairseq's: warmup from 0.01 of the peak, hold for `hold_steps`, exponential decay to
            `min_lr_ratio`; data2vec speech).
        hold_steps: the tri-stage schedule's hold at the peak (a value below 1 is a fraction of the total).
        extra: further keyword arguments for the optimizer (e.g. `{"trust_coeff": 0.001}` for LARS).
    """

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9
    layer_decay: float | None = None
    warmup_steps: float = 0.0
    min_lr_ratio: float = 0.0
    schedule: str = "cosine"
    hold_steps: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def build_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    """timm optimizer over `model`'s trainable parameters with no weight decay on norms and biases.

    Layer-decay scales (`lr_scale` in a group) are folded into each group's `lr` so that any
    torch scheduler applies them.
    """
    name = config.name.lower()
    if name not in timm.optim.list_optimizers():
        raise ValueError(
            f"optim.name={config.name!r} is not a timm optimizer; choose one of "
            f"{', '.join(sorted(timm.optim.list_optimizers()))}"
        )
    kwargs: dict[str, Any] = dict(config.extra)
    if "adam" in name or "lamb" in name:
        kwargs.setdefault("betas", tuple(config.betas))
    optimizer = timm.optim.create_optimizer_v2(
        model,
        opt=name,
        lr=config.lr,
        weight_decay=config.weight_decay,
        momentum=config.momentum,
        layer_decay=config.layer_decay,
        filter_bias_and_bn=True,
        **kwargs,
    )
    for group in optimizer.param_groups:
        group["lr"] = group["lr"] * group.pop("lr_scale", 1.0)
    return optimizer


def steps_of(value: float, total_steps: int, name: str = "warmup_steps") -> int:
    """A length in steps: `value` itself, or that fraction of `total_steps` when below 1."""
    if value < 0:
        raise ValueError(f"optim.{name} must be >= 0, got {value}")
    if value < 1:
        return int(round(value * total_steps))
    return int(value)


def warmup_steps_of(config: OptimizerConfig, total_steps: int) -> int:
    """Warmup length in steps: `warmup_steps` itself, or that fraction of `total_steps` when below 1."""
    return steps_of(config.warmup_steps, total_steps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimizerConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step linear warmup then cosine or linear decay to `min_lr_ratio` of each group's peak LR (or the
    tri-stage schedule)."""
    if total_steps <= 0:
        raise ValueError(
            f"total_steps must be positive, got {total_steps}; set trainer.max_steps or max_epochs"
        )
    if config.schedule not in SCHEDULES:
        raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {config.schedule!r}")
    warmup = min(warmup_steps_of(config, total_steps), total_steps)
    if config.schedule == "tri_stage":
        hold = min(steps_of(config.hold_steps, total_steps, "hold_steps"), total_steps - warmup)
        final = config.min_lr_ratio
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: tri_stage(step, warmup, hold, total_steps, final)
        )
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_decay(step, warmup, total_steps, config.min_lr_ratio, config.schedule)
    )
