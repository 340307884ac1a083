import pytest
import torch

from ssl_lightning.nn.losses import BYOLLoss, byol_loss, symmetric_byol_loss


@pytest.mark.parametrize(
    ("p", "z", "expected"),
    [
        ([[1.0, 2.0, 0.0]], [[2.0, 4.0, 0.0]], 0.0),  # parallel
        ([[1.0, 0.0, 0.0]], [[0.0, 5.0, 0.0]], 2.0),  # orthogonal
        ([[1.0, -1.0, 2.0]], [[-3.0, 3.0, -6.0]], 4.0),  # opposite
        ([[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], 1.0),  # mean of 0 and 2
    ],
)
def test_known_values(p: list, z: list, expected: float) -> None:
    p_t, z_t = torch.tensor(p), torch.tensor(z)
    assert byol_loss(p_t, z_t).item() == pytest.approx(expected, abs=1e-6)
    assert BYOLLoss()(p_t, z_t).item() == pytest.approx(expected, abs=1e-6)


def test_target_gets_no_gradient_and_prediction_does() -> None:
    g = torch.Generator().manual_seed(0)
    p = torch.randn(4, 8, generator=g, requires_grad=True)
    z = torch.randn(4, 8, generator=g, requires_grad=True)
    byol_loss(p, z).backward()
    assert z.grad is None
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_symmetric_loss_pairs_each_prediction_with_the_other_views_target() -> None:
    e = torch.eye(3)
    p0, p1 = e[[0]], e[[1]]
    z0, z1 = e[[1]], -e[[0]]  # p0 vs z1: opposite (4); p1 vs z0: parallel (0)
    assert symmetric_byol_loss(p0, p1, z0, z1).item() == pytest.approx(4.0, abs=1e-6)
    # swapped targets: p0 vs z0 and p1 vs z1 are orthogonal (2 + 2)
    assert symmetric_byol_loss(p0, p1, z1, z0).item() == pytest.approx(4.0, abs=1e-6)
    assert symmetric_byol_loss(p0, p1, p1, p0).item() == pytest.approx(0.0, abs=1e-6)
    assert symmetric_byol_loss(p0, p1, -p1, -p0).item() == pytest.approx(8.0, abs=1e-6)


def test_mismatched_shapes_raise() -> None:
    with pytest.raises(ValueError, match="same shape"):
        byol_loss(torch.ones(2, 3), torch.ones(2, 4))
