"""Cosine-similarity vector quantizer with a normalised-EMA codebook (BEiT v2 / BEATs tokenizers).

Inputs are l2-normalised and assigned to the nearest of K unit-norm codewords; the codebook is not
learned by gradients but moved towards the mean of its assigned vectors by an exponential moving
average followed by re-normalisation (in training mode only). Buffer names match the official BEATs
tokenizer checkpoints (`embedding.weight`, `embedding.cluster_size`, `embedding.embed_avg`,
`embedding.initted`, `cluster_size`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


class QuantizerOutput(NamedTuple):
    """`quantized[..., Q]` (straight-through), the commitment `loss` (scalar), `indices[...]` (int64)."""

    quantized: Tensor
    loss: Tensor
    indices: Tensor


def code_statistics(z: Tensor, indices: Tensor, num_codes: int) -> tuple[Tensor, Tensor]:
    """Per-code counts `[K]` and sums of the assigned vectors `[K, Q]` for `z[M, Q]`, `indices[M]`."""
    counts = torch.bincount(indices, minlength=num_codes).to(z.dtype)
    sums = z.new_zeros(num_codes, z.shape[-1]).index_add_(0, indices, z)
    return counts, sums


class EMACodebook(nn.Module):
    """K unit-norm codewords of dimension Q, stored as buffers (never trained by gradients).

    `initted` is 0 for a fresh codebook: its codewords are zeros until initialised (BEATs runs
    k-means on the first batch). `cluster_size` holds the code counts of that initialisation and
    `embed_avg` is kept only for checkpoint compatibility (the normalised EMA does not use it).
    """

    def __init__(self, num_codes: int, code_dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_codes, code_dim))
        self.register_buffer("cluster_size", torch.zeros(num_codes))
        self.register_buffer("embed_avg", torch.zeros(num_codes, code_dim))
        self.register_buffer("initted", torch.zeros(1))

    @property
    def is_initialized(self) -> bool:
        return bool(self.initted.item())

    def forward(self, indices: Tensor) -> Tensor:
        """Codewords of `indices[...]` -> `[..., Q]`."""
        return F.embedding(indices, self.weight)


class NormEMAVectorQuantizer(nn.Module):
    """Nearest-codeword quantizer on the unit sphere with normalised-EMA codebook updates.

    `forward(z[..., Q])` l2-normalises z, picks the codeword of smallest squared distance
    `||z||^2 + ||w_k||^2 - 2 z.w_k` (lowest index on ties) and returns the straight-through codewords,
    the commitment loss `beta * mse(sg(w), z)` and the indices. Only in training mode does it update
    the usage statistics `cluster_size <- decay * cluster_size + (1 - decay) * counts` and the
    codewords `w_k <- l2norm(decay * w_k + (1 - decay) * l2norm(mean of the vectors assigned to k))`
    (unused codes unchanged); eval mode has no side effects.

    Args:
        num_codes: codebook size K (`quant_n`).
        code_dim: codeword dimension Q (`quant_dim`).
        beta: weight of the commitment loss.
        decay: EMA decay of the codewords and usage statistics.
    """

    def __init__(self, num_codes: int, code_dim: int, beta: float = 1.0, decay: float = 0.99) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.decay = decay
        self.embedding = EMACodebook(num_codes, code_dim)
        self.register_buffer("cluster_size", torch.zeros(num_codes))

    def nearest(self, z: Tensor) -> Tensor:
        """Index of the nearest codeword of each unit vector `z[..., Q]` -> int64 `[...]`."""
        flat = rearrange(z, "... q -> (...) q")
        codebook = self.embedding.weight
        distances = (
            flat.pow(2).sum(dim=1, keepdim=True) + codebook.pow(2).sum(dim=1) - 2.0 * flat @ codebook.t()
        )
        return distances.argmin(dim=1).view(z.shape[:-1])

    def encode(self, z: Tensor) -> Tensor:
        """Code indices `[...]` of `z[..., Q]` (l2-normalised first), without any side effect."""
        self._check(z)
        return self.nearest(F.normalize(z.detach(), dim=-1))

    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize `z[..., Q]`: see the class docstring."""
        self._check(z)
        z = F.normalize(z, dim=-1)
        indices = self.nearest(z.detach())
        if self.training:
            self.ema_update(rearrange(z.detach(), "... q -> (...) q"), indices.flatten())
        quantized = self.embedding(indices)
        loss = self.beta * F.mse_loss(quantized.detach(), z)
        return QuantizerOutput(z + (quantized - z).detach(), loss, indices)

    def _check(self, z: Tensor) -> None:
        if z.shape[-1] != self.code_dim:
            raise ValueError(
                f"expected vectors of dimension {self.code_dim} (quant_dim), got shape {tuple(z.shape)}"
            )
        if not self.embedding.is_initialized:
            raise RuntimeError(
                "the codebook is not initialised (embedding.initted == 0): load a trained tokenizer "
                "checkpoint, or initialise the codewords before quantizing"
            )

    @torch.no_grad()
    def ema_update(self, z: Tensor, indices: Tensor) -> None:
        """One normalised-EMA step from unit vectors `z[M, Q]` assigned to `indices[M]`."""
        counts, sums = code_statistics(z, indices, self.num_codes)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        used = counts > 0
        means = F.normalize(sums / counts.clamp(min=1.0)[:, None], dim=-1)
        target = torch.where(used[:, None], means, self.embedding.weight)
        updated = self.embedding.weight * self.decay + target * (1.0 - self.decay)
        self.embedding.weight.copy_(F.normalize(updated, dim=-1))

    def extra_repr(self) -> str:
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, beta={self.beta}, decay={self.decay}"
