"""Normalised-EMA quantizer in training: k-means init on the first batch, EMA worked example (decay 0.99),
padding left out of the codebook update, usage statistics, float32 under autocast."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from ssl_lightning.nn.kmeans import spherical_kmeans
from ssl_lightning.nn.vector_quantizer import NormEMAVectorQuantizer, code_statistics, codebook_usage


def quantizer(codebook: list[list[float]]) -> NormEMAVectorQuantizer:
    module = NormEMAVectorQuantizer(num_codes=len(codebook), code_dim=len(codebook[0]))
    module.embedding.weight.copy_(torch.tensor(codebook))
    module.embedding.initted.fill_(1.0)
    return module


def test_ema_step_with_the_paper_decay_and_padding_left_out():
    module = quantizer([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]).train()
    assert module.decay == 0.99
    # codes 0, 1, 0, and a padded vector that would select code 2
    z = torch.tensor([[8.0, 6.0], [0.6, 0.8], [0.8, 0.6], [-3.0, 0.1]])
    output = module(z, valid=torch.tensor([True, True, True, False]))
    assert output.indices.tolist() == [0, 1, 0, 2]
    assert_close(module.cluster_size, torch.tensor([0.02, 0.01, 0.0]))
    norm = math.sqrt(0.998**2 + 0.006**2)  # l2norm(0.99 (1, 0) + 0.01 (0.8, 0.6))
    expected = torch.tensor([[0.998 / norm, 0.006 / norm], [0.006 / norm, 0.998 / norm], [-1.0, 0.0]])
    assert_close(module.embedding.weight, expected)
    assert module.embedding.cluster_size.sum() == 0  # set by k-means only


def test_first_training_forward_runs_kmeans_then_an_ema_step():
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(2, 20, 4, generator=generator)
    valid = torch.ones(2, 20, dtype=torch.bool)
    valid[1, 15:] = False
    z[1, 15:] = 100.0  # padding: must not pull any codeword
    fresh = NormEMAVectorQuantizer(6, 4).train()
    torch.manual_seed(5)
    output = fresh(z, valid)

    unit = F.normalize(z, dim=-1)[valid]
    torch.manual_seed(5)
    centroids, counts = spherical_kmeans(unit, 6, iterations=10)
    reference = quantizer(centroids.tolist())
    indices = reference.nearest(unit)
    reference.ema_update(unit, indices)
    assert fresh.embedding.initted.item() == 1.0
    assert_close(fresh.embedding.cluster_size, counts)
    assert_close(fresh.embedding.weight, reference.embedding.weight)
    assert_close(fresh.cluster_size, reference.cluster_size)
    assert torch.equal(output.indices[valid], indices)


def test_a_fresh_codebook_in_eval_mode_is_an_error_without_side_effects():
    fresh = NormEMAVectorQuantizer(4, 3).eval()
    with pytest.raises(RuntimeError, match="codebook is not initialised"):
        fresh(torch.randn(5, 3))
    assert fresh.embedding.initted.item() == 0.0 and fresh.embedding.weight.abs().sum() == 0


def test_a_bad_valid_mask_is_a_clear_error():
    with pytest.raises(ValueError, match="valid must be a bool mask \\(2, 5\\)"):
        quantizer([[1.0, 0.0]]).train()(torch.randn(2, 5, 2), torch.ones(2, 4, dtype=torch.bool))


def test_weighted_code_statistics_and_usage():
    z = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    counts, sums = code_statistics(z, torch.tensor([2, 0, 2]), 4, weights=torch.tensor([1.0, 1.0, 0.0]))
    assert counts.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert sums.tolist() == [[3.0, 4.0], [0.0, 0.0], [1.0, 2.0], [0.0, 0.0]]
    used, perplexity = codebook_usage(torch.tensor([2.0, 1.0, 1.0, 0.0]))
    assert used.item() == 3
    assert perplexity.item() == pytest.approx(2**1.5)  # entropy 0.5 ln 2 + 2 * 0.25 ln 4 = 1.5 ln 2
    assert codebook_usage(torch.tensor([0.0, 5.0]))[1].item() == pytest.approx(1.0)


def test_quantizer_runs_in_float32_under_autocast():
    module = quantizer([[1.0, 0.0], [0.0, 1.0]]).train()
    z = torch.tensor([[0.9, 0.1], [0.2, 0.7]], requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = module(z.to(torch.bfloat16))
    assert output.quantized.dtype == torch.float32 and output.indices.tolist() == [0, 1]
    assert module.embedding.weight.dtype == torch.float32
