"""torch.distributed helpers that also work in a single process (no Lightning dependency).

`gather_with_grad` is the all-gather that contrastive losses need to use the negatives of the
global batch: the forward concatenates every rank's tensor, the backward sums the gradient of
the concatenation over ranks (all-reduce) and hands each rank the slice of its own input. So a
rank's input gradient is the derivative of the SUM of all ranks' losses; DDP then averages
parameter gradients over ranks, which makes training equal to one process on the global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True when a default process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank in the default group (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def all_gather_sizes(size: int, device: torch.device) -> list[int]:
    """Every rank's `size` (e.g. its local batch size), in rank order; `[size]` when not distributed.

    `device` must suit the backend (a CUDA device for NCCL, CPU for gloo).
    """
    if world_size() == 1:
        return [size]
    local = torch.tensor([size], dtype=torch.int64, device=device)
    sizes = [torch.empty_like(local) for _ in range(world_size())]
    dist.all_gather(sizes, local)
    return [int(s) for s in torch.cat(sizes).tolist()]


class _GatherWithGrad(torch.autograd.Function):
    """`x[n_r, ...]` on rank r -> `[sum_r n_r, ...]`; backward: all-reduce(sum), then this rank's slice."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int]) -> Tensor:  # type: ignore[override]
        ctx.sizes = sizes
        ctx.rank = rank()
        longest = max(sizes)
        padded = torch.cat([x, x.new_zeros(longest - x.shape[0], *x.shape[1:])]).contiguous()
        chunks = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(chunks, padded)
        return torch.cat([chunk[:n] for chunk, n in zip(chunks, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return total[start : start + ctx.sizes[ctx.rank]], None


def gather_with_grad(x: Tensor, sizes: list[int] | None = None) -> Tensor:
    """Concatenate `x[n_r, ...]` from all ranks along dim 0 -> `[sum_r n_r, ...]`, rank order.

    Gradients flow back to each rank's own slice (summed over the ranks' losses). Identity when
    torch.distributed is not initialised or the world size is 1. Ranks may hold different batch
    sizes `n_r` (the other dims must agree); pass `sizes` from `all_gather_sizes` to skip the
    collective that finds them.
    """
    if x.dim() == 0:
        raise ValueError("gather_with_grad needs a tensor with a batch dim 0; got a scalar")
    if world_size() == 1:
        return x
    if sizes is None:
        sizes = all_gather_sizes(x.shape[0], x.device)
    if len(sizes) != world_size() or sizes[rank()] != x.shape[0]:
        raise ValueError(
            f"sizes={sizes} does not match world size {world_size()} and this rank's batch "
            f"{x.shape[0]}; pass all_gather_sizes(x.shape[0], x.device)"
        )
    return _GatherWithGrad.apply(x, sizes)
