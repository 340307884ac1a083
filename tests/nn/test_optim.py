import pytest
import torch
from torch import nn

from ssl_lightning.nn.optim import OptimizerConfig, build_optimizer, build_scheduler, warmup_steps_of


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))


def test_no_weight_decay_on_biases_and_norms():
    model = _model()
    opt = build_optimizer(model, OptimizerConfig(name="adamw", lr=0.1, weight_decay=0.05))
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decay) == (p.ndim >= 2), name


def test_adamw_betas_and_unknown_name():
    opt = build_optimizer(_model(), OptimizerConfig(name="adamw", betas=(0.9, 0.98)))
    assert isinstance(opt, torch.optim.AdamW)
    assert all(g["betas"] == (0.9, 0.98) for g in opt.param_groups)
    with pytest.raises(ValueError, match="optim.name='adamx'"):
        build_optimizer(_model(), OptimizerConfig(name="adamx"))


def test_lars_from_timm():
    opt = build_optimizer(_model(), OptimizerConfig(name="lars", lr=0.3, weight_decay=1e-6))
    assert type(opt).__name__ == "Lars"


class _Layered(nn.Sequential):
    def group_matcher(self, coarse: bool = False):
        return lambda name: int(name.split(".")[0])


def test_layer_decay_scales_lr_by_depth():
    model = _Layered(nn.Linear(4, 8), nn.LayerNorm(8), nn.Linear(8, 2))
    opt = build_optimizer(model, OptimizerConfig(lr=1.0, weight_decay=0.0, layer_decay=0.5))
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    # three layers: the top one keeps the peak LR, each layer below is scaled by 0.5 once more
    assert lr_of[id(model[2].weight)] == pytest.approx(1.0)
    assert lr_of[id(model[1].weight)] == pytest.approx(0.5)
    assert lr_of[id(model[0].weight)] == pytest.approx(0.25)
    assert lr_of[id(model[0].bias)] == pytest.approx(0.25)


def test_warmup_then_cosine_schedule():
    model = _model()
    cfg = OptimizerConfig(lr=1.0, weight_decay=0.0, warmup_steps=10, min_lr_ratio=0.0)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, total_steps=110)
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[5] < lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5, abs=1e-6)  # halfway through the cosine part
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] < 1e-3


def test_fractional_warmup_and_errors():
    assert warmup_steps_of(OptimizerConfig(warmup_steps=0.1), 500) == 50
    assert warmup_steps_of(OptimizerConfig(warmup_steps=20), 500) == 20
    with pytest.raises(ValueError, match="warmup_steps"):
        warmup_steps_of(OptimizerConfig(warmup_steps=-1), 10)
    with pytest.raises(ValueError, match="max_steps"):
        build_scheduler(build_optimizer(_model(), OptimizerConfig()), OptimizerConfig(), 0)


def test_linear_schedule_from_config_and_bad_name():
    cfg = OptimizerConfig(lr=1.0, weight_decay=0.0, warmup_steps=10, schedule="linear")
    opt = build_optimizer(_model(), cfg)
    sched = build_scheduler(opt, cfg, total_steps=110)
    lrs = []
    for _ in range(61):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[35] == pytest.approx(0.75) and lrs[60] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="optim.schedule"):
        build_scheduler(opt, OptimizerConfig(schedule="step"), 10)


def test_tri_stage_scheduler_fractions() -> None:
    """data2vec speech's 3% / 90% / 7% of 1000 steps: 0.01 at step 0, peak over steps 30-929, 0.05 at 1000."""
    model = torch.nn.Linear(2, 2)
    config = OptimizerConfig(
        name="adam",
        lr=1.0,
        weight_decay=0.0,
        warmup_steps=0.03,
        hold_steps=0.9,
        schedule="tri_stage",
        min_lr_ratio=0.05,
    )
    optimizer = build_optimizer(model, config)
    scheduler = build_scheduler(optimizer, config, 1000)
    lrs = []
    for _ in range(1000):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[30] == pytest.approx(1.0) and lrs[929] == pytest.approx(1.0)
    assert lrs[930] == pytest.approx(1.0) and lrs[931] < 1.0
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
