import math

import pytest
import torch
from torch import nn

from ssl_lightning.nn.losses import NTXentLoss, byol_loss
from ssl_lightning.nn.losses.contrastive_quant import (
    F1,
    F1_PLUS,
    F2,
    F2_PLUS,
    Branch,
    ContrastiveQuantLoss,
    byol_pair_loss,
    embed_branches,
)
from ssl_lightning.nn.quantization import QuantizerConfig
from ssl_lightning.nn.quantized_model import precision, quant_layers, quantize_model

X_Q1, X_Q2 = Branch(0, 1), Branch(0, 2)
CODES = {F1: 1.0, F2: 2.0, F1_PLUS: 3.0, F2_PLUS: 4.0, X_Q1: 5.0, X_Q2: 6.0}


class RecordingLoss:
    """Fake base loss on scalar branch codes: records (a, b) and returns 10 a + b."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float]] = []

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self.calls.append((a.item(), b.item()))
        return 10 * a + b


@pytest.mark.parametrize(
    ("objective", "pairs", "branches"),
    [
        ("cq_a", [(1, 4)], [F1, F2_PLUS]),  # eq. 4: NCE(F_q1(Aug1 x), F_q2(Aug2 x))
        ("cq_b", [(1, 3), (2, 4)], [F1, F1_PLUS, F2, F2_PLUS]),  # eq. 7: NCE(f1, f1+) + NCE(f2, f2+)
        ("cq_c", [(1, 3), (2, 4), (1, 2), (3, 4)], [F1, F1_PLUS, F2, F2_PLUS]),  # eq. 8
        ("cq_quant", [(5, 6)], [X_Q1, X_Q2]),  # sec. 4.5: NCE(f1, f2) on one un-augmented input
    ],
)
def test_each_objective_contrasts_the_pairs_of_its_equation(objective, pairs, branches) -> None:
    embeddings = {branch: torch.tensor(code) for branch, code in CODES.items()}
    base = RecordingLoss()
    loss = ContrastiveQuantLoss(base, objective)
    assert list(loss.branches) == branches
    total = loss(embeddings)
    assert base.calls == pairs
    assert total.item() == sum(10 * a + b for a, b in pairs)
    base.calls.clear()
    mean = ContrastiveQuantLoss(base, objective, reduction="mean")(embeddings)
    assert mean.item() == pytest.approx(total.item() / len(pairs))


def test_term_names_follow_the_paper() -> None:
    embeddings = {branch: torch.tensor(code) for branch, code in CODES.items()}
    terms = ContrastiveQuantLoss(RecordingLoss(), "cq_c").terms(embeddings)
    assert list(terms) == ["NCE(f1,f1+)", "NCE(f2,f2+)", "NCE(f1,f2)", "NCE(f1+,f2+)"]
    assert [t.item() for t in terms.values()] == [13, 24, 12, 34]
    assert list(ContrastiveQuantLoss(RecordingLoss(), "cq_quant").terms(embeddings)) == ["NCE(x@q1,x@q2)"]


def test_ntxent_worked_example() -> None:
    # f1 = f1+ = orthogonal rows; f2 = f2+ = identical rows (B = 2, D = 2, t = 0.5):
    # NCE(f1, f1+) = log(1 + 2 e^{-1/t}); NCE(f2, f2+) = log 3;
    # NCE(f1, f2) = NCE(f1+, f2+) = (log(2 + e^{-c/t}) + log(2 + e^{(1-c)/t})) / 2 with c = cos 45 deg
    t, c = 0.5, 1 / math.sqrt(2)
    orthogonal, identical = torch.eye(2) * 2.0, torch.ones(2, 2)
    embeddings = {F1: orthogonal, F1_PLUS: orthogonal, F2: identical, F2_PLUS: identical}
    cross = (math.log(2 + math.exp(-c / t)) + math.log(2 + math.exp((1 - c) / t))) / 2
    expected = math.log(1 + 2 * math.exp(-1 / t)) + math.log(3) + 2 * cross
    assert cross == pytest.approx(1.0709602, abs=1e-7)
    assert expected == pytest.approx(3.4800774, abs=1e-7)
    assert ContrastiveQuantLoss(NTXentLoss(t), "cq_c")(embeddings).item() == pytest.approx(expected, abs=1e-5)
    assert ContrastiveQuantLoss(NTXentLoss(t), "cq_a")(embeddings).item() == pytest.approx(cross, abs=1e-5)
    cq_b = math.log(1 + 2 * math.exp(-1 / t)) + math.log(3)
    assert ContrastiveQuantLoss(NTXentLoss(t), "cq_b")(embeddings).item() == pytest.approx(cq_b, abs=1e-5)


def test_byol_pair_loss_is_symmetric_over_online_and_target() -> None:
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    a = (e1, e2)  # (online prediction, target projection)
    b = (e1, 3 * e1)
    # byol_loss(p_a = e1, z_b = 3 e1) = 0; byol_loss(p_b = e1, z_a = e2) = 2
    assert byol_pair_loss(a, b).item() == pytest.approx(2.0)
    assert byol_pair_loss(a, b).item() == pytest.approx((byol_loss(e1, 3 * e1) + byol_loss(e1, e2)).item())
    embeddings = {F1: a, F2_PLUS: b}
    assert ContrastiveQuantLoss(byol_pair_loss, "cq_a")(embeddings).item() == pytest.approx(2.0)


def test_bad_configuration_and_missing_branches() -> None:
    with pytest.raises(ValueError, match="objective must be one of"):
        ContrastiveQuantLoss(RecordingLoss(), "cq_d")
    with pytest.raises(ValueError, match="reduction"):
        ContrastiveQuantLoss(RecordingLoss(), "cq_a", reduction="max")
    with pytest.raises(ValueError, match=r"missing \['f2\+'\]"):
        ContrastiveQuantLoss(RecordingLoss(), "cq_c")({F1: torch.tensor(1.0), F2: 1, F1_PLUS: 1})


class CallRecorder(nn.Module):
    """Linear map `[N, 3] -> [N, 2]` that records the batch size and precision of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(3, 2)
        self.calls: list[tuple[int, int | None]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((x.shape[0], self.proj.bits))
        return self.proj(x)


def test_embed_branches_runs_one_forward_per_precision() -> None:
    torch.manual_seed(0)
    model = quantize_model(CallRecorder(), config=QuantizerConfig(quantize_input=False))
    views = {1: torch.randn(4, 3), 2: torch.randn(4, 3)}
    precisions = {1: 3, 2: 9}
    for objective, calls in [("cq_a", [(4, 3), (4, 9)]), ("cq_c", [(8, 3), (8, 9)])]:
        model.calls.clear()
        outputs = embed_branches(
            model, views, precisions, ContrastiveQuantLoss(RecordingLoss(), objective).branches
        )
        assert model.calls == calls
        for branch, output in outputs.items():  # weights-only quantization: rows do not interact
            with precision(model, precisions[branch.q]):
                assert torch.allclose(output, model(views[branch.view]), atol=1e-6)
    assert [layer.bits for layer in quant_layers(model)] == [None]
    with pytest.raises(ValueError, match="needs view 0"):
        embed_branches(model, views, precisions, [X_Q1])


def test_cq_c_step_trains_a_quantized_convnet() -> None:
    torch.manual_seed(0)
    encoder = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )
    quantize_model(encoder)
    x = torch.randn(6, 3, 8, 8)
    views = {1: x + 0.1 * torch.randn_like(x), 2: x + 0.1 * torch.randn_like(x)}
    criterion = ContrastiveQuantLoss(NTXentLoss(0.5), "cq_c")
    loss = criterion(embed_branches(encoder, views, {1: 4, 2: 6}, criterion.branches))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
