"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al., 2020)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.nn.distributed import all_gather_sizes, gather_with_grad, rank, world_size


class NTXentLoss(nn.Module):
    """SimCLR loss over two views, both directions, optionally against the negatives of the global batch.

    Each of the 2B local embeddings (l2-normalised) is an anchor; its positive is the other view of
    the same sample and its negatives are all other embeddings except itself: 2N - 2 of them for
    the N samples of the (global, when `gather_distributed`) batch. The loss is the mean over the
    2B local anchors of -log softmax(cos / temperature) at the positive. With `gather_distributed`
    and W > 1 processes, it is the sum over the local anchors divided by 2N / W instead: the local
    mean weighted by B W / N, which is 1 when every rank holds B = N / W samples. Then the mean of
    the ranks' losses is the global batch's loss and the DDP-averaged gradients equal those of one
    process on the global batch also when the ranks hold different batch sizes (see
    `ssl_lightning.nn.distributed.gather_with_grad`: a rank's input gradient is that of the sum of
    the ranks' losses).

    Args:
        temperature: the softmax temperature t > 0 (SimCLR uses 0.1-0.5).
        gather_distributed: use the embeddings of every rank as keys (identity in one process).
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.gather_distributed = gather_distributed

    def forward(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Embeddings of view 0 and view 1, `[B, D]` each, row i of both from sample i -> scalar loss."""
        if z0.dim() != 2 or z0.shape != z1.shape:
            raise ValueError(
                f"z0 and z1 must be [B, D] with the same shape; got {tuple(z0.shape)} and {tuple(z1.shape)}"
            )
        with torch.autocast(z0.device.type, enabled=False):
            return self._loss(F.normalize(z0.float(), dim=1), F.normalize(z1.float(), dim=1))

    def _loss(self, z0: Tensor, z1: Tensor) -> Tensor:
        """Loss of unit-norm float32 embeddings `[B, D]` (autocast off: bf16 logits / t lose ~0.04)."""
        batch = z0.shape[0]
        if self.gather_distributed and world_size() > 1:
            sizes = all_gather_sizes(batch, z0.device)
            keys0, keys1 = gather_with_grad(z0, sizes), gather_with_grad(z1, sizes)
            offset = sum(sizes[: rank()])
            weight = batch * world_size() / sum(sizes)
        else:
            keys0, keys1, offset, weight = z0, z1, 0, 1.0
        total = keys0.shape[0]
        anchors = torch.cat([z0, z1])
        keys = torch.cat([keys0, keys1])
        logits = anchors @ keys.T / self.temperature
        local = torch.arange(batch, device=z0.device) + offset
        self_index = torch.cat([local, local + total])
        positive_index = torch.cat([local + total, local])
        logits = logits.scatter(1, self_index[:, None], float("-inf"))
        return F.cross_entropy(logits, positive_index) * weight

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, gather_distributed={self.gather_distributed}"
