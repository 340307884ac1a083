import math

import pytest
import torch
import torch.nn.functional as F

from ssl_lightning.nn.losses import NTXentLoss


def reference_ntxent(z0: torch.Tensor, z1: torch.Tensor, temperature: float) -> torch.Tensor:
    """solo-learn's formulation, written as a plain loop: positives and negatives by sample index."""
    z = F.normalize(torch.cat([z0, z1]).double(), dim=1)
    index = torch.arange(z0.shape[0]).repeat(2)
    similarity = torch.exp(z @ z.T / temperature)
    losses = []
    for i in range(z.shape[0]):
        others = torch.arange(z.shape[0]) != i
        positive = similarity[i, others & (index == index[i])].sum()
        negative = similarity[i, index != index[i]].sum()
        losses.append(-torch.log(positive / (positive + negative)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize(("n", "temperature", "expected"), [(2, 0.5, 0.239545), (4, 0.1, 2.7236e-4)])
def test_orthogonal_samples_with_identical_views(n: int, temperature: float, expected: float) -> None:
    z = torch.eye(8)[:n] * 3.0  # orthogonal, and not unit norm: the loss normalises
    loss = NTXentLoss(temperature)(z, z)
    # float32 logsumexp of values near 1 / t: absolute error ~1e-6
    assert loss.item() == pytest.approx(math.log(1 + (2 * n - 2) * math.exp(-1 / temperature)), abs=2e-6)
    assert loss.item() == pytest.approx(expected, abs=2e-6)


@pytest.mark.parametrize("temperature", [0.05, 0.5, 2.0])
def test_all_identical_embeddings_give_log_2n_minus_1(temperature: float) -> None:
    z = torch.ones(4, 5)
    assert NTXentLoss(temperature)(z, z).item() == pytest.approx(math.log(7), rel=1e-6)
    assert math.log(7) == pytest.approx(1.945910, abs=1e-6)


def test_matches_the_solo_learn_formulation_and_is_symmetric_in_the_views() -> None:
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 6, 16, generator=g)
    loss = NTXentLoss(0.2)
    assert loss(z0, z1).item() == pytest.approx(reference_ntxent(z0, z1, 0.2).item(), rel=1e-5)
    assert loss(z1, z0).item() == pytest.approx(loss(z0, z1).item(), rel=1e-6)


def test_gradients_flow_to_both_views_and_gather_is_identity_in_one_process() -> None:
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(5, 8, generator=g, requires_grad=True)
    z1 = torch.randn(5, 8, generator=g, requires_grad=True)
    local = NTXentLoss(0.1)(z0, z1)
    gathered = NTXentLoss(0.1, gather_distributed=True)(z0, z1)
    assert gathered.item() == local.item()
    local.backward()
    assert z0.grad is not None and z0.grad.abs().sum() > 0
    assert z1.grad is not None and z1.grad.abs().sum() > 0


def test_bf16_inputs_are_computed_in_float32() -> None:
    z = torch.eye(4)
    loss = NTXentLoss(0.1)(z.bfloat16(), z.bfloat16())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(2.7236e-4, rel=1e-3)


def test_autocast_does_not_lower_the_similarities_to_bf16() -> None:
    g = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(2, 32, 64, generator=g)
    expected = NTXentLoss(0.05)(z0, z1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert NTXentLoss(0.05)(z0, z1).item() == pytest.approx(expected.item(), rel=1e-6)
        assert (z0 @ z1.T).dtype == torch.bfloat16  # autocast is active here


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="temperature"):
        NTXentLoss(0.0)
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        NTXentLoss()(torch.ones(4, 3), torch.ones(5, 3))
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        NTXentLoss()(torch.ones(4), torch.ones(4))
