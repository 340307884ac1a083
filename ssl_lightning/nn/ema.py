"""Exponential-moving-average teachers (BYOL target network, data2vec teacher) and their decay schedules.

No Lightning dependency: a method calls `teacher.update(student, tau)` once per optimizer step.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def cosine_tau(step: int, max_steps: int, base_tau: float = 0.996, final_tau: float = 1.0) -> float:
    """BYOL's decay: tau(k) = final - (final - base) * (cos(pi k / K) + 1) / 2, k = `step`, K = `max_steps`.

    Step 0 gives `base_tau`, K/2 the midpoint, K (and every later step) `final_tau`.
    """
    if step < 0 or max_steps <= 0:
        raise ValueError(f"need step >= 0 and max_steps > 0, got step={step}, max_steps={max_steps}")
    progress = min(step / max_steps, 1.0)
    return final_tau - (final_tau - base_tau) * (math.cos(math.pi * progress) + 1.0) / 2.0


def linear_tau(step: int, ramp_steps: int, start: float, end: float) -> float:
    """data2vec's decay: linear from `start` (step 0) to `end` (step `ramp_steps`), then constant `end`.

    Exactly end - (end - start) * (1 - step / ramp_steps) while step < ramp_steps (fairseq
    `get_annealed_rate`); `ramp_steps` = 0 gives `end` at once.
    """
    if step < 0 or ramp_steps < 0:
        raise ValueError(f"need step >= 0 and ramp_steps >= 0, got step={step}, ramp_steps={ramp_steps}")
    if step >= ramp_steps:
        return end
    return end - (end - start) * (1.0 - step / ramp_steps)


def _unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside DDP and/or `torch.compile` wrappers."""
    if isinstance(module, nn.parallel.DistributedDataParallel):
        module = module.module
    return getattr(module, "_orig_mod", module)


def _matching(teacher: dict[str, Tensor], student: dict[str, Tensor], kind: str) -> None:
    if teacher.keys() != student.keys():
        missing = sorted(teacher.keys() - student.keys())[:5]
        extra = sorted(student.keys() - teacher.keys())[:5]
        raise ValueError(
            f"EMATeacher.update: the student's {kind} do not match the teacher's (teacher-only: {missing}, "
            f"student-only: {extra}); pass the same module the teacher was copied from"
        )


class EMATeacher(nn.Module):
    """An fp32 deep copy of a student module, updated as teacher = tau * teacher + (1 - tau) * student.

    The copy is a registered submodule (`self.module`), so it is saved in checkpoints, and its
    parameters have `requires_grad=False`. It stays float32 even when the parent module is cast
    to bf16/fp16 (device moves still apply), so slow decays (tau = 0.9999) are not lost to rounding.
    `forward` runs the copy under `torch.no_grad()`; feed it float32 inputs or run it under autocast.

    `update` is deterministic given the student's values, so under DDP (which keeps parameters
    identical on every rank) the teachers stay identical across ranks. Buffers follow the
    student's buffers on the same rank: BatchNorm running statistics, which DDP does not keep in
    sync between its start-of-forward broadcasts, are copied like the student's (or averaged).

    Args:
        student: the module to copy (DDP / torch.compile wrappers are unwrapped).
        ema_buffers: average floating-point buffers (BatchNorm running stats) with the same tau
            instead of copying them (integer buffers such as `num_batches_tracked` are always copied).
        skip_keys: parameter/buffer name prefixes that are copied from the student at every update
            instead of averaged (data2vec's `skip_keys`, e.g. `["pos_conv"]`). Student parameters
            with `requires_grad=False` are copied too.
        always_eval: keep the copy in eval mode (no dropout, BatchNorm uses running stats) even when
            the parent is put in train mode (data2vec); False lets it follow the parent (BYOL).
    """

    def __init__(
        self,
        student: nn.Module,
        ema_buffers: bool = False,
        skip_keys: Sequence[str] = (),
        always_eval: bool = True,
    ) -> None:
        super().__init__()
        self.ema_buffers = ema_buffers
        self.skip_keys = tuple(skip_keys)
        self.always_eval = always_eval
        self.module = copy.deepcopy(_unwrap(student)).float()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None
        self.train(self.training)

    def _skipped(self, name: str) -> bool:
        return any(name == key or name.startswith(f"{key}.") for key in self.skip_keys)

    @torch.no_grad()
    def update(self, student: nn.Module, tau: float) -> None:
        """teacher <- tau * teacher + (1 - tau) * student, in place, with fused foreach ops.

        `tau` in [0, 1]: 1 keeps the averaged tensors unchanged, 0 copies the student.
        """
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must be in [0, 1], got {tau}")
        student = _unwrap(student)
        student_params = dict(student.named_parameters())
        teacher_params = dict(self.module.named_parameters())
        student_buffers = dict(student.named_buffers())
        teacher_buffers = dict(self.module.named_buffers())
        _matching(teacher_params, student_params, "parameters")
        _matching(teacher_buffers, student_buffers, "buffers")
        averaged: list[tuple[Tensor, Tensor]] = []
        copied: list[tuple[Tensor, Tensor]] = []
        for name, target in teacher_params.items():
            source = student_params[name]
            average = source.requires_grad and not self._skipped(name)
            (averaged if average else copied).append((target, source.detach()))
        for name, target in teacher_buffers.items():
            source = student_buffers[name]
            average = self.ema_buffers and target.is_floating_point() and not self._skipped(name)
            (averaged if average else copied).append((target, source))
        if averaged:
            targets, sources = zip(*averaged, strict=True)
            torch._foreach_mul_(list(targets), tau)
            torch._foreach_add_(list(targets), list(sources), alpha=1.0 - tau)
        if copied:
            targets, sources = zip(*copied, strict=True)
            torch._foreach_copy_(list(targets), list(sources))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The teacher copy's output for the same arguments as the student, without gradients."""
        with torch.no_grad():
            return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> EMATeacher:
        super().train(mode)
        if self.always_eval:
            self.module.eval()
        return self

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> EMATeacher:
        """Apply device moves to the copy but keep its floating-point tensors float32."""

        def keep_float32(tensor: Tensor) -> Tensor:
            probe = fn(torch.empty(0, dtype=tensor.dtype, device=tensor.device))
            if probe.dtype == tensor.dtype or not tensor.is_floating_point():
                return fn(tensor)
            return tensor.to(device=probe.device)

        return super()._apply(keep_float32, recurse)

    def extra_repr(self) -> str:
        return f"ema_buffers={self.ema_buffers}, skip_keys={self.skip_keys}, always_eval={self.always_eval}"
