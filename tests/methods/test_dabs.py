"""The DABS objectives: e-Mix's loss in both reductions and its mixing, ShED's shuffling and loss, RQ on
frozen (or straight-through) token embeddings, each checked on small worked examples, then one Lightning
training run of each on a domain with token, 1d and 2d inputs."""

import math

import pytest
import torch
from torch.utils.data import DataLoader

from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.methods.dabs import (
    EmbeddingRQ,
    EMix,
    ShED,
    emix_loss,
    shed_loss,
    shuffle_count,
    shuffle_embeddings,
)
from ssl_lightning.nn.input_specs import InputSpec
from ssl_lightning.nn.optim import build_optimizer

pytestmark = pytest.mark.usefixtures("single_thread")

SPECS = [
    InputSpec("text", "tokens", 4, vocab_size=30),
    InputSpec("sensor", "1d", 6, patch_size=3, in_channels=2),
    InputSpec("image", "2d", (4, 4), patch_size=2, in_channels=3),
]  # 4 + 2 + 4 = 10 tokens


def encoder() -> DabsTransformer:
    torch.manual_seed(0)
    return DabsTransformer(SPECS, dim=16, depth=1, heads=2, dim_head=4, mlp_dim=24, out_dim=8)


def items(count: int = 8) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(1)
    return [
        {
            "text": torch.randint(30, (4,), generator=generator),
            "sensor": torch.randn(6, 2, generator=generator),
            "image": torch.rand(3, 4, 4, generator=generator),
            "label": torch.tensor(i % 2),
            "clip_id": torch.tensor(i),
        }
        for i in range(count)
    ]


def batch() -> dict[str, torch.Tensor]:
    return next(iter(DataLoader(items(), batch_size=8)))


def cross_entropy(row: list[float], target: int) -> float:
    return -row[target] + math.log(sum(math.exp(v) for v in row))


def test_emix_loss_worked_example_in_both_reductions():
    mixed = torch.tensor([[3.0, 0.0], [0.0, 2.0]])  # normalised: (1, 0), (0, 1)
    clean = torch.tensor([[2.0, 0.0], [0.3, 0.4]])  # normalised: (1, 0), (0.6, 0.8)
    logits = torch.nn.functional.normalize(mixed) @ torch.nn.functional.normalize(clean).T / 0.2
    torch.testing.assert_close(logits, torch.tensor([[5.0, 3.0], [0.0, 4.0]]))
    lam, partner = torch.tensor([0.9, 0.6]), torch.tensor([1, 0])
    own = [cross_entropy([5, 3], 0), cross_entropy([0, 4], 1)]
    other = [cross_entropy([5, 3], 1), cross_entropy([0, 4], 0)]
    dabs = 0.75 * (own[0] + own[1]) / 2 + 0.25 * (other[0] + other[1]) / 2
    imix = (0.9 * own[0] + 0.1 * other[0] + 0.6 * own[1] + 0.4 * other[1]) / 2
    assert emix_loss(logits, lam, partner, "dabs").item() == pytest.approx(dabs, rel=1e-6)
    assert emix_loss(logits, lam, partner, "imix").item() == pytest.approx(imix, rel=1e-6)
    assert dabs != pytest.approx(imix)
    # the official expression: lam of shape [B, 1, 1] times the per-example CE [B], then .mean()
    ce = torch.nn.CrossEntropyLoss(reduction="none")
    weight = lam.view(-1, 1, 1)
    official = (weight * ce(logits, torch.arange(2)) + (1 - weight) * ce(logits, partner)).mean()
    assert official.item() == pytest.approx(dabs, rel=1e-6)


def test_emix_mixes_with_weights_of_at_least_half_and_a_stopped_partner(monkeypatch):
    method = EMix(encoder())
    assert (method.mixing_weights(1000) >= 0.5).all()
    inputs = batch()
    embeddings = method.encoder.embed_inputs(inputs).detach().requires_grad_(True)
    monkeypatch.setattr(method.encoder, "embed_inputs", lambda _: embeddings)
    seen = []
    monkeypatch.setattr(method, "project", lambda x: seen.append(x) or x.mean(dim=1))
    lam = torch.linspace(0.5, 1.0, 8)
    monkeypatch.setattr(method, "mixing_weights", lambda size: lam)
    method.objective(inputs, torch.Generator().manual_seed(0))
    mixed, clean = seen
    assert clean is embeddings
    partner = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    weight = lam.view(-1, 1, 1)
    torch.testing.assert_close(mixed, weight * embeddings + (1 - weight) * embeddings[partner])
    (gradient,) = torch.autograd.grad(mixed.sum(), embeddings)
    torch.testing.assert_close(gradient, weight.expand_as(embeddings))  # nothing through the partner


@pytest.mark.parametrize("num_tokens", [7, 10, 13, 20, 64, 196])
def test_shed_chooses_ceil_15_percent_and_moves_every_chosen_token(num_tokens):
    count = -(-15 * num_tokens // 100)
    assert shuffle_count(num_tokens) == count
    embeddings = torch.arange(num_tokens, dtype=torch.float).view(1, -1, 1).repeat(50, 1, 3)
    shuffled, is_shuffled = shuffle_embeddings(embeddings, generator=torch.Generator().manual_seed(0))
    origin = shuffled[..., 0].long()  # the position each embedding came from
    positions = torch.arange(num_tokens)
    assert (is_shuffled.sum(dim=1) == count).all()
    assert ((origin != positions) == is_shuffled.bool()).all()  # chosen tokens all moved, others stayed
    for row, flags in zip(origin, is_shuffled.bool(), strict=True):
        assert sorted(row[flags].tolist()) == positions[flags].tolist()  # moved among themselves
    assert torch.equal(shuffled[..., 0], shuffled[..., 2])


def test_shed_refuses_a_single_chosen_token():
    assert shuffle_count(7) == 2
    with pytest.raises(ValueError, match=r"= 1 token\(s\) of N = 6"):
        shuffle_count(6)
    with pytest.raises(ValueError, match="N = 6"):
        ShED(DabsTransformer([InputSpec("x", "1d", 6, in_channels=2)], dim=8, depth=1, heads=2, dim_head=4))


def test_shed_loss_worked_example_excludes_cls():
    logits = torch.tensor([[[9.0, -9.0], [2.0, 0.0], [0.0, 1.0]]])  # CLS, token 1, token 2
    is_shuffled = torch.tensor([[1, 1]])
    loss, acc = shed_loss(logits, is_shuffled)
    expected = (cross_entropy([2, 0], 1) + cross_entropy([0, 1], 1)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert acc.item() == 0.5


def test_shed_predicts_every_token_but_cls():
    method = ShED(encoder())
    loss, acc = method.objective(batch(), torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and math.isfinite(loss.item()) and 0 <= acc.item() <= 1
    assert method.predictor.in_features == 16 and method.predictor.out_features == 2


def test_rq_quantizes_each_embedding_channel_over_the_tokens():
    method = EmbeddingRQ(encoder(), num_bins=2)
    embeddings = method.encoder.embed_inputs(batch())
    view = method.quantize(embeddings, torch.Generator().manual_seed(0))
    assert view.shape == embeddings.shape == (8, 10, 16)
    distinct = [view[b, :, d].unique().numel() for b in range(8) for d in range(16)]
    assert max(distinct) <= 2 and min(distinct) >= 1
    assert max(embeddings[b, :, d].unique().numel() for b in range(8) for d in range(16)) > 2
    lo, hi = embeddings.amin(dim=1, keepdim=True), embeddings.amax(dim=1, keepdim=True)
    assert ((view >= lo) & (view <= hi + 1e-5)).all()  # within each channel's own range
    method.eval()
    assert torch.equal(method.quantize(embeddings), embeddings)


def step_and_compare(method: EmbeddingRQ) -> tuple[bool, bool]:
    """One optimizer step on the contrastive loss: (embedding modules changed, they had a gradient)."""
    before = [p.detach().clone() for p in method.encoder.embed_modules.parameters()]
    optimizer = build_optimizer(method, method.optim)
    loss, _ = method.objective(batch(), torch.Generator().manual_seed(0))
    loss.backward()
    optimizer.step()
    after = list(method.encoder.embed_modules.parameters())
    changed = any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    return changed, any(p.grad is not None for p in after)


def test_rq_keeps_the_random_embedding_frozen_by_default():
    method = EmbeddingRQ(encoder())
    assert not any(p.requires_grad for p in method.encoder.embed_modules.parameters())
    assert step_and_compare(method) == (False, False)
    assert method.encoder.cls_token.grad is not None


def test_rq_straight_through_trains_the_embedding():
    method = EmbeddingRQ(encoder(), straight_through=True)
    assert all(p.requires_grad for p in method.encoder.embed_modules.parameters())
    embeddings = method.encoder.embed_inputs(batch())
    (gradient,) = torch.autograd.grad((method.quantize(embeddings) * 3).sum(), embeddings)
    torch.testing.assert_close(gradient, torch.full_like(embeddings, 3.0))
    assert step_and_compare(method) == (True, True)


@pytest.mark.parametrize("cls", [EMix, ShED, EmbeddingRQ])
def test_two_training_steps_with_lightning_on_tokens_1d_and_2d(cls, quiet_trainer):
    method = cls(encoder())
    before = {name: p.detach().clone() for name, p in method.named_parameters() if p.requires_grad}
    loader = DataLoader(items(), batch_size=4)
    trainer = quiet_trainer(max_steps=2, limit_val_batches=1, num_sanity_val_steps=0)
    trainer.fit(method, loader, loader)
    assert trainer.global_step == 2
    assert math.isfinite(trainer.callback_metrics["train/loss"].item())
    assert "val/loss" in trainer.callback_metrics
    assert all(not torch.equal(p, before[name]) for name, p in method.named_parameters() if name in before)
    group = trainer.optimizers[0].param_groups[0]
    assert type(trainer.optimizers[0]).__name__ == "AdamW" and group["lr"] == 1e-4
    assert {g["weight_decay"] for g in trainer.optimizers[0].param_groups} == {0.0, 1e-4}
    method.eval()
    assert method.embed(batch()).shape == (8, 16)
    assert method.embed_sequence(batch()).shape == (8, 11, 16)
