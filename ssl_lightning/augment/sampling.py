"""Random draws for batched augmentations: from an optional `torch.Generator`, returned on the data's device.

A generator lives on one device; draws are made there and moved to the data, so a CPU generator
reproduces the same augmentation on any accelerator.
"""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(
    size: tuple[int, ...],
    device: torch.device,
    generator: torch.Generator | None = None,
    low: float = 0.0,
    high: float = 1.0,
) -> Tensor:
    """Float32 draws from U[low, high) of shape `size`, on `device`."""
    source = generator.device if generator is not None else device
    draws = torch.rand(size, generator=generator, device=source, dtype=torch.float32)
    return (low + (high - low) * draws).to(device)


def beta_integer(
    a: int, b: int, size: tuple[int, ...], device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """Float32 draws from Beta(a, b) for integer a, b >= 1, of shape `size`, on `device`.

    Exact and generator-friendly (torch's Gamma/Beta samplers take no generator): Beta(a, b) is the
    law of the a-th smallest of a + b - 1 independent U(0, 1) draws.
    """
    if not (isinstance(a, int) and isinstance(b, int) and a >= 1 and b >= 1):
        raise ValueError(f"beta_integer needs integer concentrations a, b >= 1; got a={a!r}, b={b!r}")
    draws = uniform((*size, a + b - 1), device, generator)
    return draws.sort(dim=-1).values[..., a - 1]


def random_offsets(
    batch: int, high: int, device: torch.device, generator: torch.Generator | None = None
) -> Tensor:
    """Int64 `[batch]`: independent uniform integers in {0, ..., high}."""
    return (uniform((batch,), device, generator) * (high + 1)).long().clamp(max=high)
