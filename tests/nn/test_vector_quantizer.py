"""Normalised-EMA vector quantizer (BEATs' NormEMAVectorQuantizer), on worked examples computed by hand:
nearest codeword, straight-through output and commitment loss from the codebook before the EMA step,
the EMA step itself, k-means initialisation, padding, usage statistics, float32 under autocast."""

import math

import pytest
import torch
from torch.testing import assert_close

from ssl_lightning.nn.vector_quantizer import NormEMAVectorQuantizer, code_statistics, codebook_usage


def quantizer(codebook: list[list[float]], decay: float = 0.99) -> NormEMAVectorQuantizer:
    module = NormEMAVectorQuantizer(num_codes=len(codebook), code_dim=len(codebook[0]), decay=decay)
    module.embedding.weight.copy_(torch.tensor(codebook))
    module.embedding.initted.fill_(1.0)
    return module


def test_nearest_codeword_on_the_unit_circle():
    module = quantizer([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]).eval()
    z = torch.tensor([[2.0, 1.0], [0.1, 3.0], [-1.0, 0.2], [-5.0, -0.1]])
    assert module.encode(z).tolist() == [0, 1, 2, 2]
    assert module.encode(torch.tensor([[1.0, 1.0]])).tolist() == [0]  # a tie goes to the lowest index


def test_eval_forward_is_straight_through_with_commitment_loss_and_no_side_effects():
    module = quantizer([[1.0, 0.0], [0.0, 1.0]]).eval()
    z = torch.tensor([[[3.0, 4.0]]], requires_grad=True)  # unit vector (0.6, 0.8) -> code 1
    before = {key: value.clone() for key, value in module.state_dict().items()}
    output = module(z)
    assert output.indices.tolist() == [[1]]
    assert_close(output.quantized.detach(), torch.tensor([[[0.0, 1.0]]]))
    assert output.loss.item() == pytest.approx((0.6**2 + 0.2**2) / 2)
    assert all(torch.equal(before[key], value) for key, value in module.state_dict().items())
    output.quantized.sum().backward()  # the gradient of z_q is that of normalize(z)
    assert_close(z.grad, torch.tensor([[[0.032, -0.024]]]))


def test_training_forward_returns_the_codeword_from_before_its_ema_step():
    # The official quantizer gathers z_q, then updates the codebook: loss = beta * mse(sg(z_q), l2(z)).
    module = quantizer([[1.0, 0.0], [0.0, 1.0]], decay=0.5).train()
    z = torch.tensor([[0.8, 0.6]], requires_grad=True)
    output = module(z)
    assert output.indices.tolist() == [0]
    assert_close(output.quantized.detach(), torch.tensor([[1.0, 0.0]]))  # not the updated (0.949, 0.316)
    assert output.loss.item() == pytest.approx((0.2**2 + 0.6**2) / 2)  # 0.200, not 0.051
    # the EMA step: l2(0.5 (1, 0) + 0.5 (0.8, 0.6)) = (0.9, 0.3) / sqrt(0.9); code 1 unused, unchanged
    assert_close(
        module.embedding.weight, torch.tensor([[0.9 / math.sqrt(0.9), 0.3 / math.sqrt(0.9)], [0, 1]])
    )
    output.loss.backward()  # d/dz of mean((l2(z) - (1, 0))^2) at the unit z: (I - z z^T) (z - (1, 0))
    assert_close(z.grad, torch.tensor([[-0.36, 0.48]]))  # (-0.2, 0.6) - 0.2 (0.8, 0.6)


def test_training_step_moves_used_codes_towards_their_normalised_mean():
    module = quantizer([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], decay=0.5).train()
    z = torch.tensor([[0.8, 0.6], [0.6, 0.8], [0.8, 0.6]])  # codes 0, 1, 0; code 2 unused
    output = module(z)
    assert output.indices.tolist() == [0, 1, 0]
    assert_close(output.quantized, torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]))
    assert_close(module.cluster_size, torch.tensor([1.0, 0.5, 0.0]))
    code0 = torch.tensor([0.9, 0.3]) / math.sqrt(0.9)  # normalize(0.5 (1, 0) + 0.5 (0.8, 0.6))
    code1 = torch.tensor([0.3, 0.9]) / math.sqrt(0.9)
    assert_close(module.embedding.weight, torch.stack([code0, code1, torch.tensor([-1.0, 0.0])]))


def test_ema_step_with_the_paper_decay_and_padding_left_out_of_the_update_only():
    module = quantizer([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]).train()
    assert module.decay == 0.99
    # codes 0, 1, 0, and a padded vector that selects code 2
    z = torch.tensor([[8.0, 6.0], [0.6, 0.8], [0.8, 0.6], [-3.0, 0.1]])
    output = module(z, valid=torch.tensor([True, True, True, False]))
    assert output.indices.tolist() == [0, 1, 0, 2]
    assert_close(module.cluster_size, torch.tensor([0.02, 0.01, 0.0]))
    norm = math.sqrt(0.998**2 + 0.006**2)  # l2norm(0.99 (1, 0) + 0.01 (0.8, 0.6))
    expected = torch.tensor([[0.998 / norm, 0.006 / norm], [0.006 / norm, 0.998 / norm], [-1.0, 0.0]])
    assert_close(module.embedding.weight, expected)
    assert module.embedding.cluster_size.sum() == 0  # set by k-means only
    # every vector counts in the loss, padding too: |u - w|^2 = 2 - 2 u.w, 0.4 for each of the three
    # valid vectors, 2 - 2 * 3 / sqrt(9.01) for the padded one; the mean over 4 x 2 elements
    assert output.loss.item() == pytest.approx((3 * 0.4 + 2 - 6 / math.sqrt(9.01)) / 8)


def test_first_training_forward_initialises_the_codebook_by_kmeans_without_padding():
    # Two clusters mirrored about the y axis; k-means (any of its random starts) ends at their
    # normalised means (+-0.9, 0.3) / sqrt(0.9), where the EMA step leaves them. The padded vector
    # would pull the first cluster's codeword if it counted in the k-means or the EMA step.
    z = torch.tensor([[2.0, 0.0], [4.0, 3.0], [-0.5, 0.0], [-8.0, 6.0], [3.0, 40.0]])
    valid = torch.tensor([True, True, True, True, False])
    for seed in range(4):
        fresh = NormEMAVectorQuantizer(num_codes=2, code_dim=2).train()
        torch.manual_seed(seed)
        output = fresh(z, valid)
        a = output.indices[0].item()
        assert output.indices.tolist() == [a, a, 1 - a, 1 - a, a], f"seed {seed}"
        means = torch.tensor([[0.9, 0.3], [-0.9, 0.3]]) / math.sqrt(0.9)
        assert_close(fresh.embedding.weight, means if a == 0 else means.flip(0), msg=f"seed {seed}")
        assert_close(output.quantized[:4], means[[0, 0, 1, 1]])
        assert fresh.embedding.initted.item() == 1.0
        assert fresh.embedding.cluster_size.tolist() == [2.0, 2.0]  # k-means member counts
        assert_close(fresh.cluster_size, torch.tensor([0.02, 0.02]))  # 0.01 x this batch's counts


def test_a_fresh_codebook_in_eval_mode_is_an_error_without_side_effects():
    fresh = NormEMAVectorQuantizer(4, 3).eval()
    with pytest.raises(RuntimeError, match="codebook is not initialised"):
        fresh(torch.randn(5, 3))
    assert fresh.embedding.initted.item() == 0.0 and fresh.embedding.weight.abs().sum() == 0


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="valid must be a bool mask \\(2, 5\\)"):
        quantizer([[1.0, 0.0]]).train()(torch.randn(2, 5, 2), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="dimension 2 \\(quant_dim\\)"):
        quantizer([[1.0, 0.0]]).encode(torch.randn(3, 5))


def test_code_statistics_and_usage():
    z = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    counts, sums = code_statistics(z, torch.tensor([2, 0, 2]), 4)
    assert counts.tolist() == [1.0, 0.0, 2.0, 0.0]
    assert sums.tolist() == [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 0.0]]
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
