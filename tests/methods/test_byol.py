"""BYOL: loss composition, stop-gradient, fp32 EMA target, tau schedule, per-step updates, exact resume."""

import math

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from ssl_lightning.methods import BYOL, load_method
from ssl_lightning.nn.losses import byol_loss
from ssl_lightning.nn.optim import OptimizerConfig, build_optimizer

pytestmark = pytest.mark.usefixtures("single_thread")


def _model(encoder_cls: type[nn.Module], views_cls: type[nn.Module], **kwargs) -> BYOL:
    torch.manual_seed(0)
    return BYOL(encoder_cls(8), views_cls(), 4, 16, predictor_hidden_dim=16, **kwargs)


def _waves(batch: int = 6, seed: int = 2) -> torch.Tensor:
    return torch.randn(batch, 640, generator=torch.Generator().manual_seed(seed))


def test_loss_is_symmetric_prediction_of_the_other_views_target(tiny_encoder_cls, alternating_views_cls):
    model = _model(tiny_encoder_cls, alternating_views_cls).eval()
    waves = _waves()
    loss = model.two_view_loss(waves)
    v1, v2 = waves.flip(-1), waves.roll(100, -1)

    def projection(views):  # the target is still a copy of the online encoder + projector
        return model.projector(model.encoder(views)[0].mean(1))

    z1, z2 = projection(v1), projection(v2)
    p1, p2 = model.predictor(z1), model.predictor(z2)
    torch.testing.assert_close(loss, byol_loss(p1, z2) + byol_loss(p2, z1))
    assert 0.0 < loss.item() < 8.0


def test_target_gets_no_gradient_and_is_not_optimized(tiny_encoder_cls, alternating_views_cls):
    model = _model(tiny_encoder_cls, alternating_views_cls)
    model.two_view_loss(_waves()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.target.parameters())
    for module in (model.encoder, model.projector, model.predictor):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
    optimized = {
        id(p) for group in build_optimizer(model, OptimizerConfig()).param_groups for p in group["params"]
    }
    assert optimized == {id(p) for p in model.parameters() if p.requires_grad}
    assert not optimized & {id(p) for p in model.target.parameters()}


def test_target_stays_float32_when_the_model_is_cast_to_bfloat16(tiny_encoder_cls, alternating_views_cls):
    model = _model(tiny_encoder_cls, alternating_views_cls).to(torch.bfloat16)
    assert model.encoder.proj.weight.dtype == torch.bfloat16
    assert {p.dtype for p in model.target.parameters()} == {torch.float32}
    out = model(_waves().to(torch.bfloat16))
    assert out.shape == (6, 2, 4) and out.dtype == torch.float32


def test_tau_schedule_and_the_update_rule(tiny_encoder_cls, alternating_views_cls):
    model = _model(tiny_encoder_cls, alternating_views_cls)
    assert model.tau(0, 10) == pytest.approx(0.996)
    assert model.tau(5, 10) == pytest.approx(0.998)
    assert model.tau(10, 10) == 1.0
    before = {k: v.clone() for k, v in model.target.module.state_dict().items()}
    with torch.no_grad():
        model.encoder.proj.weight.add_(1.0)
    assert model.update_target(0, 10) == pytest.approx(0.996)
    expected = 0.996 * before["encoder.proj.weight"] + 0.004 * model.encoder.proj.weight
    torch.testing.assert_close(model.target.module["encoder"].proj.weight, expected)
    torch.testing.assert_close(model.target.module["projector"][0].weight, before["projector.0.weight"])
    after = {k: v.clone() for k, v in model.target.module.state_dict().items()}
    model.update_target(10, 10)  # tau = 1: unchanged
    assert all(torch.equal(after[k], v) for k, v in model.target.module.state_dict().items())
    with pytest.raises(ValueError, match="base_tau"):
        _model(tiny_encoder_cls, alternating_views_cls, base_tau=0.999, final_tau=0.99)


def test_target_updates_once_per_optimizer_step_with_accumulation(
    tiny_encoder_cls, alternating_views_cls, quiet_trainer
):
    model = _model(
        tiny_encoder_cls, alternating_views_cls, optim=OptimizerConfig(name="sgd", lr=0.1, weight_decay=0.0)
    )
    calls = []
    update = model.update_target
    model.update_target = lambda step, total: calls.append((step, total)) or update(step, total)
    initial = {k: v.clone() for k, v in model.target.module.state_dict().items()}
    data = torch.utils.data.DataLoader([{"audio": w} for w in _waves(16)], batch_size=4)
    trainer = quiet_trainer(max_steps=2, accumulate_grad_batches=2)
    trainer.fit(model, train_dataloaders=data)
    assert calls == [(0, 2), (1, 2)]
    assert trainer.callback_metrics["train/tau"] == pytest.approx(model.tau(1, 2))
    moved = model.target.module["encoder"].proj.weight
    assert not torch.equal(moved, initial["encoder.proj.weight"])
    assert not torch.equal(moved, model.encoder.proj.weight)


def test_resume_from_a_step_checkpoint_is_exact_and_load_method_restores_the_target(
    tmp_path, tiny_encoder_cls, alternating_views_cls, quiet_trainer
):
    waves = _waves(4)
    data = torch.utils.data.DataLoader([{"audio": w} for w in waves], batch_size=2)
    optim = OptimizerConfig(name="adamw", lr=0.01, warmup_steps=1)
    checkpoints = ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    straight = _model(tiny_encoder_cls, alternating_views_cls, optim=optim, base_tau=0.9)
    quiet_trainer(max_steps=4, callbacks=[checkpoints], enable_checkpointing=True).fit(straight, data)
    middle = sorted((tmp_path / "ckpt").glob("*step=2.ckpt"))
    assert len(middle) == 1, sorted((tmp_path / "ckpt").iterdir())
    resumed = _model(tiny_encoder_cls, alternating_views_cls, optim=optim, base_tau=0.9)
    # weights_only=False: outside the CLI the saved hyper-parameters hold the encoder module itself
    quiet_trainer(max_steps=4).fit(resumed, data, ckpt_path=middle[0], weights_only=False)
    expected = straight.state_dict()
    assert expected.keys() == resumed.state_dict().keys()
    assert any(k.startswith("target.module.encoder.") for k in expected)
    for key, value in resumed.state_dict().items():
        torch.testing.assert_close(value, expected[key], rtol=0, atol=1e-7, msg=key)
    restored = load_method(middle[0])
    assert type(restored) is BYOL and not torch.equal(
        restored.target.module["encoder"].proj.weight, straight.target.module["encoder"].proj.weight
    )
    step2 = torch.load(middle[0], weights_only=False)["state_dict"]
    torch.testing.assert_close(
        restored.state_dict()["target.module.encoder.proj.weight"], step2["target.module.encoder.proj.weight"]
    )
    assert math.isclose(restored.base_tau, 0.9)
