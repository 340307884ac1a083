"""Normalised-EMA vector quantizer: nearest codeword, straight-through output, EMA step."""

import math

import pytest
import torch
from torch.testing import assert_close

from ssl_lightning.nn.vector_quantizer import NormEMAVectorQuantizer, code_statistics


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


def test_forward_is_straight_through_with_commitment_loss_and_no_eval_side_effects():
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


def test_training_step_moves_used_codes_towards_their_normalised_mean():
    module = quantizer([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], decay=0.5).train()
    z = torch.tensor([[0.8, 0.6], [0.6, 0.8], [0.8, 0.6]])  # codes 0, 1, 0; code 2 unused
    output = module(z)
    assert output.indices.tolist() == [0, 1, 0]
    assert_close(module.cluster_size, torch.tensor([1.0, 0.5, 0.0]))
    code0 = torch.tensor([0.9, 0.3]) / math.sqrt(0.9)  # normalize(0.5 (1, 0) + 0.5 (0.8, 0.6))
    code1 = torch.tensor([0.3, 0.9]) / math.sqrt(0.9)
    assert_close(module.embedding.weight, torch.stack([code0, code1, torch.tensor([-1.0, 0.0])]))


def test_code_statistics_counts_and_sums():
    counts, sums = code_statistics(
        torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), torch.tensor([2, 0, 2]), 4
    )
    assert counts.tolist() == [1.0, 0.0, 2.0, 0.0]
    assert sums.tolist() == [[3.0, 4.0], [0.0, 0.0], [6.0, 8.0], [0.0, 0.0]]


def test_wrong_dimension_is_a_clear_error():
    with pytest.raises(ValueError, match="dimension 2 \\(quant_dim\\)"):
        quantizer([[1.0, 0.0]]).encode(torch.randn(3, 5))
