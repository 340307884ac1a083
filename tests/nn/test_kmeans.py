"""Spherical k-means (the codebook initialisation of BEATs' normalised-EMA quantizer): worked examples."""

import math

import pytest
import torch
from torch.testing import assert_close

from ssl_lightning.nn.kmeans import spherical_kmeans


def angles(*radians: float) -> torch.Tensor:
    """Unit vectors `[M, 2]` at the given angles."""
    values = torch.tensor(radians, dtype=torch.float64)
    return torch.stack([values.cos(), values.sin()], dim=1).float()


def sort_rows(x: torch.Tensor) -> torch.Tensor:
    return x[torch.argsort(x[:, 0] * 10 + x[:, 1])]


@pytest.mark.parametrize("seed", range(6))
def test_two_clusters_converge_to_their_normalised_means_from_any_start(seed):
    # two pairs symmetric about the x and y axes: the normalised means are exactly (1, 0) and (0, 1)
    samples = angles(0.1, -0.1, math.pi / 2 + 0.1, math.pi / 2 - 0.1)
    centroids, counts = spherical_kmeans(samples, 2, generator=torch.Generator().manual_seed(seed))
    assert_close(sort_rows(centroids), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=1e-6, rtol=0)
    assert counts.tolist() == [2.0, 2.0]
    assert counts.dtype == torch.float32


def test_one_iteration_counts_the_assignment_to_the_initial_draw():
    samples = angles(0.0, 0.2, 1.0, 1.6)
    # the initial centroids are the samples of randperm(4)[:2] under the same generator
    first = torch.randperm(4, generator=torch.Generator().manual_seed(3))[:2].tolist()
    centroids, counts = spherical_kmeans(samples, 2, iterations=1, generator=torch.Generator().manual_seed(3))
    assignment = (samples @ samples[first].t()).argmax(dim=1)
    assert counts.tolist() == torch.bincount(assignment, minlength=2).float().tolist()
    for k in range(2):
        members = samples[assignment == k]
        assert_close(centroids[k], members.sum(0) / members.sum(0).norm())


def test_an_empty_cluster_keeps_its_initial_centroid():
    # three samples at one point and three at another, 3 clusters: two initial centroids coincide
    # whatever the draw, ties go to the lowest index, so the higher duplicate never gets a member
    samples = torch.tensor([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    for seed in range(5):
        centroids, counts = spherical_kmeans(samples, 3, generator=torch.Generator().manual_seed(seed))
        assert sorted(counts.tolist()) == [0.0, 3.0, 3.0]
        empty = int(torch.nonzero(counts == 0)[0])
        assert any(torch.equal(centroids[empty], row) for row in samples)
        assert_close(sort_rows(centroids[counts > 0]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))


def test_fewer_samples_than_clusters_draws_with_replacement():
    samples = angles(0.3, 2.0)
    centroids, counts = spherical_kmeans(samples, 5, generator=torch.Generator().manual_seed(0))
    assert centroids.shape == (5, 2) and counts.sum().item() == 2.0
    assert all(any(torch.allclose(c, s) for s in samples) for c in centroids)
    assert_close(centroids.norm(dim=1), torch.ones(5))


def test_global_rng_when_no_generator():
    samples = torch.nn.functional.normalize(
        torch.randn(50, 4, generator=torch.Generator().manual_seed(1)), dim=1
    )
    torch.manual_seed(11)
    first = spherical_kmeans(samples, 6)
    torch.manual_seed(11)
    second = spherical_kmeans(samples, 6)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="non-empty float tensor"):
        spherical_kmeans(torch.zeros(0, 3), 2)
    with pytest.raises(ValueError, match="non-empty float tensor"):
        spherical_kmeans(torch.ones(4, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="num_clusters >= 1"):
        spherical_kmeans(torch.ones(4, 3), 0)
