"""BYOL-A's Mixup (Niizumi et al., 2021): mix each log-mel with a past example, in the linear domain.

Official `nttcslab/byol-a: byol_a/augmentations.py: MixupBYOLA(ratio=0.4, n_memory=2048,
log_mixup_exp=True)`, batched: every sample draws its own alpha ~ U(0, ratio) and its own background z,
a uniform pick from a FIFO memory of the last `memory_size` inputs, and becomes

    log((1 - alpha) * exp(x) + alpha * exp(z) + eps)        (log-mixup-exp, eps = machine epsilon)

The current batch (un-mixed) then enters the memory. With an empty memory the input is returned as it is.
As in the official code, x is the dataset-normalised log-mel, so "linear" means exp of normalised values.

The memory is module state, neither a parameter nor a buffer: DDP does not broadcast it (each rank mixes
with its own past batches, as each DataLoader worker of the official code kept its own memory), and it
follows the inputs' device. It is saved in `state_dict` as the module's extra state (the remembered
examples, their count and the FIFO position), so a resumed fit mixes with the same backgrounds as an
uninterrupted one (under DDP the checkpoint holds rank 0's memory, which every rank restores); a state dict
written before it was saved (no `_extra_state` key) loads with an empty memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssl_lightning.augment.sampling import random_offsets, uniform


def log_mixup_exp(x: Tensor, background: Tensor, alpha: Tensor) -> Tensor:
    """`log((1 - alpha) * exp(x) + alpha * exp(background) + eps)`; `alpha` broadcasts against `x`."""
    mixed = (1 - alpha) * x.exp() + alpha * background.exp()
    return torch.log(mixed + torch.finfo(mixed.dtype).eps)


class MemoryMixup(nn.Module):
    """Log-mixup-exp of `x[B, ...]` with examples remembered from earlier calls (training mode only).

    Args:
        ratio: alpha ~ U(0, ratio) per sample (BYOL-A: 0.4; v2: 0.2).
        memory_size: FIFO capacity in examples (BYOL-A: 2048).

    Every training call stores its batch, so a method that makes two views per step stores each
    example twice, as the official code (the transform runs twice per item). In eval mode the input
    is returned unchanged and nothing is stored.
    """

    def __init__(self, ratio: float = 0.4, memory_size: int = 2048) -> None:
        super().__init__()
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be in [0, 1], got {ratio}")
        if not isinstance(memory_size, int) or memory_size < 1:
            raise ValueError(f"memory_size must be a positive int, got {memory_size!r}")
        self.ratio = ratio
        self.memory_size = memory_size
        self.memory: Tensor | None = None
        self.stored = 0
        self.position = 0

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """`x[B, ...]` -> same shape: mixed with remembered examples; then `x` is remembered."""
        if not self.training:
            return x
        self._check_example_shape(x)
        batch = x.shape[0]
        alpha = uniform((batch,), x.device, generator, high=self.ratio)
        if self.stored:
            index = random_offsets(batch, self.stored - 1, x.device, generator)
            background = self.memory.to(x.device)[index]
            mixed = log_mixup_exp(x, background, alpha.view(-1, *[1] * (x.dim() - 1)).to(x.dtype))
        else:
            mixed = x
        self.remember(x)
        return mixed

    def remember(self, x: Tensor) -> None:
        """Write `x[B, ...]` (detached) into the FIFO memory, overwriting the oldest examples."""
        if self.memory is None:
            self.memory = x.new_empty(self.memory_size, *x.shape[1:])
        self.memory = self.memory.to(x.device)  # plain state: `module.to()` does not move it
        latest = x.detach()[-self.memory_size :]
        slots = (self.position + torch.arange(latest.shape[0], device=x.device)) % self.memory_size
        self.memory[slots] = latest.to(self.memory.dtype)
        self.position = (self.position + latest.shape[0]) % self.memory_size
        self.stored = min(self.stored + latest.shape[0], self.memory_size)

    def get_extra_state(self) -> dict:
        """The remembered examples `[stored, ...]` (None when empty), `stored` and the FIFO `position`."""
        memory = None if self.memory is None else self.memory[: self.stored].detach().cpu().clone()
        return {"memory": memory, "stored": self.stored, "position": self.position}

    def set_extra_state(self, state: dict) -> None:
        """Restore what `get_extra_state` saved (the capacity stays this module's `memory_size`)."""
        memory, stored = state["memory"], state["stored"]
        if memory is None:
            self.memory, self.stored, self.position = None, 0, 0
            return
        if stored > self.memory_size:
            raise ValueError(
                f"MemoryMixup: the checkpoint remembers {stored} examples but memory_size is "
                f"{self.memory_size}; load it with memory_size >= {stored}"
            )
        self.memory = memory.new_empty(self.memory_size, *memory.shape[1:])
        self.memory[:stored] = memory
        self.stored, self.position = stored, state["position"] % self.memory_size

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        """As nn.Module's, except that a state dict without this module's extra state (written before the
        memory was saved) is not an error: the memory starts empty."""
        if prefix + "_extra_state" not in state_dict:
            self.memory, self.stored, self.position = None, 0, 0
            state_dict = {**state_dict, prefix + "_extra_state": self.get_extra_state()}
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _check_example_shape(self, x: Tensor) -> None:
        if self.memory is not None and x.shape[1:] != self.memory.shape[1:]:
            raise ValueError(
                f"MemoryMixup remembers examples of shape {tuple(self.memory.shape[1:])} but got a batch "
                f"of {tuple(x.shape[1:])}; crop every batch to one length first (ByolAViews' "
                f"segment_frames, or the datamodule's clip length)"
            )

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}, memory_size={self.memory_size}, stored={self.stored}"
