"""Spherical k-means: the codebook initialisation of normalised-EMA vector quantizers (BEiT v2, BEATs).

As the official BEATs quantizer: the initial centroids are `num_clusters` of the samples drawn
without replacement (with replacement when there are fewer samples than clusters); each iteration
assigns every sample to the centroid of largest dot product (lowest index on ties) and moves every
non-empty cluster's centroid to the l2-normalised mean of its members (empty clusters keep theirs).
Randomness comes from `generator`, else from torch's global RNG on the samples' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def spherical_kmeans(
    samples: Tensor, num_clusters: int, iterations: int = 10, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Cluster unit vectors `samples[M, Q]` on the sphere.

    Args:
        samples: l2-normalised vectors `[M, Q]`, M >= 1 (used as given: not normalised again).
        num_clusters: K >= 1.
        iterations: number of assignment + update rounds (>= 1; BEATs uses 10).
        generator: RNG of the initial draw (on the samples' device); torch's global RNG when None.
    Returns:
        `(centroids[K, Q], counts[K])`: unit-norm centroids (float32) and the member counts of the
        last assignment (float32), i.e. of the centroids before the last update, as BEATs stores them.
    """
    if samples.dim() != 2 or samples.shape[0] < 1 or not samples.is_floating_point():
        raise ValueError(
            f"samples must be a non-empty float tensor [M, Q]; got {samples.dtype} {tuple(samples.shape)}"
        )
    if num_clusters < 1 or iterations < 1:
        raise ValueError(f"need num_clusters >= 1 and iterations >= 1, got {num_clusters} and {iterations}")
    samples = samples.float()
    num_samples = samples.shape[0]
    device = samples.device
    if num_samples >= num_clusters:
        first = torch.randperm(num_samples, generator=generator, device=device)[:num_clusters]
    else:
        first = torch.randint(0, num_samples, (num_clusters,), generator=generator, device=device)
    centroids = samples[first]
    for _ in range(iterations):
        assignment = (samples @ centroids.t()).argmax(dim=1)
        counts = torch.bincount(assignment, minlength=num_clusters).float()
        sums = torch.zeros_like(centroids).index_add_(0, assignment, samples)
        means = F.normalize(sums / counts.clamp(min=1.0)[:, None], dim=-1)
        centroids = torch.where((counts > 0)[:, None], means, centroids)
    return centroids, counts
