"""Cosine-similarity vector quantizer with a normalised-EMA codebook (BEiT v2 / BEATs tokenizers).

Inputs are l2-normalised and assigned to the nearest of K unit-norm codewords; the codebook is not
learned by gradients but moved towards the mean of its assigned vectors by an exponential moving
average followed by re-normalisation (in training mode only). A fresh codebook is initialised by
spherical k-means on the first training batch. Under torch.distributed every rank ends with the
same codebook: k-means runs on the vectors of all ranks (rank 0's result is broadcast) and the EMA
statistics (code counts and sums) are summed over ranks before each update, so a step on R ranks
equals one process on the R local batches together. Buffer names match the official BEATs
tokenizer checkpoints (`embedding.weight`, `embedding.cluster_size`, `embedding.embed_avg`,
`embedding.initted`, `cluster_size`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.nn.distributed import gather_with_grad, world_size
from ssl_lightning.nn.kmeans import spherical_kmeans


class QuantizerOutput(NamedTuple):
    """`quantized[..., Q]` (straight-through), the commitment `loss` (scalar), `indices[...]` (int64)."""

    quantized: Tensor
    loss: Tensor
    indices: Tensor


def code_statistics(
    z: Tensor, indices: Tensor, num_codes: int, weights: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Per-code counts `[K]` and sums of the assigned vectors `[K, Q]` for `z[M, Q]`, `indices[M]`.

    `weights[M]` (e.g. 0 for padding) weighs each vector in both; every vector counts once when None.
    """
    if weights is None:
        counts = torch.bincount(indices, minlength=num_codes).to(z.dtype)
    else:
        weights = weights.to(z.dtype)
        counts = torch.bincount(indices, weights=weights, minlength=num_codes)
        z = z * weights[:, None]
    sums = z.new_zeros(num_codes, z.shape[-1]).index_add_(0, indices, z)
    return counts, sums


def codebook_usage(counts: Tensor) -> tuple[Tensor, Tensor]:
    """`(used codes, perplexity)` of per-code counts `[K]`: the number of codes with a count > 0 and
    `exp(entropy)` of the code distribution (K when every code is used equally, 1 for one code)."""
    probabilities = counts / counts.sum().clamp(min=torch.finfo(counts.dtype).tiny)
    entropy = -torch.special.xlogy(probabilities, probabilities).sum()
    return (counts > 0).sum(), entropy.exp()


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
    the commitment loss `beta * mse(sg(w), z)` and the indices, all three from the codebook before
    this call's EMA step (the official quantizer gathers, then updates). Only in training mode does it
    initialise a fresh codebook (`embedding.initted == 0`) by spherical k-means on the batch
    (`kmeans_init`), then update the usage statistics
    `cluster_size <- decay * cluster_size + (1 - decay) * counts` and the codewords
    `w_k <- l2norm(decay * w_k + (1 - decay) * l2norm(mean of the vectors assigned to k))`
    (unused codes unchanged), from statistics summed over ranks under torch.distributed. Eval mode
    has no side effects (and refuses a fresh codebook).

    Args:
        num_codes: codebook size K (`quant_n`).
        code_dim: codeword dimension Q (`quant_dim`).
        beta: weight of the commitment loss.
        decay: EMA decay of the codewords and usage statistics.
        kmeans_iterations: rounds of the k-means initialisation (BEATs: 10).
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        beta: float = 1.0,
        decay: float = 0.99,
        kmeans_iterations: int = 10,
    ) -> None:
        super().__init__()
        self.num_codes = num_codes
        self.code_dim = code_dim
        self.beta = beta
        self.decay = decay
        self.kmeans_iterations = kmeans_iterations
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
        self._check_dim(z)
        self._check_initialized()
        with torch.autocast(z.device.type, enabled=False):
            return self.nearest(F.normalize(z.detach().float(), dim=-1))

    def forward(self, z: Tensor, valid: Tensor | None = None) -> QuantizerOutput:
        """Quantize `z[..., Q]`: see the class docstring.

        `valid` (bool `[...]`, e.g. False at padding) selects the vectors that initialise and update
        the codebook in training mode; every vector is quantized and counts in `loss`. Runs in float32
        (autocast disabled), so the outputs are float32.
        """
        self._check_dim(z)
        if valid is not None and (valid.shape != z.shape[:-1] or valid.dtype != torch.bool):
            raise ValueError(
                f"valid must be a bool mask {tuple(z.shape[:-1])}, got {valid.dtype} {tuple(valid.shape)}"
            )
        with torch.autocast(z.device.type, enabled=False):
            z = F.normalize(z.float(), dim=-1)
            flat = rearrange(z.detach(), "... q -> (...) q")
            weights = None if valid is None else valid.flatten()
            if self.training and not self.embedding.is_initialized:
                self.kmeans_init(flat if weights is None else flat[weights])
            self._check_initialized()
            indices = self.nearest(z.detach())
            quantized = self.embedding(indices)  # a copy: the codewords before this step's EMA update
            if self.training:
                self.ema_update(flat, indices.flatten(), weights)
            loss = self.beta * F.mse_loss(quantized.detach(), z)
            return QuantizerOutput(z + (quantized - z).detach(), loss, indices)

    def _check_dim(self, z: Tensor) -> None:
        if z.shape[-1] != self.code_dim:
            raise ValueError(
                f"expected vectors of dimension {self.code_dim} (quant_dim), got shape {tuple(z.shape)}"
            )

    def _check_initialized(self) -> None:
        if not self.embedding.is_initialized:
            raise RuntimeError(
                "the codebook is not initialised (embedding.initted == 0): load a trained tokenizer "
                "checkpoint, or run one training-mode forward pass (k-means on that batch)"
            )

    @torch.no_grad()
    def kmeans_init(self, z: Tensor) -> None:
        """Initialise the codebook from unit vectors `z[M, Q]`: spherical k-means (`kmeans_iterations`
        rounds) sets `embedding.weight`, its member counts `embedding.cluster_size`, and `initted` = 1.

        Under torch.distributed (collective: every rank must call it) k-means runs on the vectors of
        all ranks in rank order, on every rank so that their RNG streams advance alike, and rank 0's
        result is broadcast, so the ranks cannot end with codebooks that differ by rounding.
        """
        distributed = world_size() > 1
        samples = gather_with_grad(z.float()) if distributed else z.float()
        if samples.shape[0] == 0:
            raise ValueError("k-means initialisation of the codebook got no vectors (all padding?)")
        centroids, counts = spherical_kmeans(samples, self.num_codes, self.kmeans_iterations)
        if distributed:
            dist.broadcast(centroids, src=0)
            dist.broadcast(counts, src=0)
        self.embedding.weight.copy_(centroids)
        self.embedding.cluster_size.copy_(counts)
        self.embedding.initted.fill_(1.0)

    @torch.no_grad()
    def ema_update(self, z: Tensor, indices: Tensor, weights: Tensor | None = None) -> None:
        """One normalised-EMA step from unit vectors `z[M, Q]` assigned to `indices[M]` (optionally
        weighted by `weights[M]`), with the counts and sums summed over ranks under torch.distributed
        (collective: every rank must call it)."""
        counts, sums = code_statistics(z.float(), indices, self.num_codes, weights)
        if world_size() > 1:
            statistics = torch.cat([counts[:, None], sums], dim=1)
            dist.all_reduce(statistics)
            counts, sums = statistics[:, 0], statistics[:, 1:]
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        used = counts > 0
        means = F.normalize(sums / counts.clamp(min=1.0)[:, None], dim=-1)
        target = torch.where(used[:, None], means, self.embedding.weight)
        updated = self.embedding.weight * self.decay + target * (1.0 - self.decay)
        self.embedding.weight.copy_(F.normalize(updated, dim=-1))

    def extra_repr(self) -> str:
        return (
            f"num_codes={self.num_codes}, code_dim={self.code_dim}, beta={self.beta}, decay={self.decay}, "
            f"kmeans_iterations={self.kmeans_iterations}"
        )
