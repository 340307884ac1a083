"""DABS's linear evaluation: its metrics on hand-computed examples, the `DABS_PROBE` preset (AdamW at a
constant rate for 100 epochs of drop-last batches), regression and one-output BCE heads."""

from dataclasses import replace

import pytest
import torch

from ssl_lightning.eval.features import FeatureSet
from ssl_lightning.eval.metrics import accuracy, auroc, compute_metric, pearson, spearman
from ssl_lightning.eval.probe import DABS_PROBE, LinearProbe, ProbeConfig


def features(x: torch.Tensor, y: torch.Tensor) -> FeatureSet:
    return FeatureSet(x, y, torch.arange(len(x)))


def test_auroc_is_the_macro_mean_over_classes_with_both_labels():
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.4, 0.2, 0.5], [0.35, 0.8, 0.1], [0.8, 0.3, 0.7]])
    targets = torch.tensor([[0, 1, 0], [0, 0, 0], [1, 1, 0], [1, 0, 0]])
    # class 0: positives 0.35, 0.8 vs negatives 0.1, 0.4 -> 3 of 4 pairs ordered; class 1: 4 of 4;
    # class 2 has no positive and is left out
    assert auroc(scores, targets) == pytest.approx((0.75 + 1.0) / 2)
    assert compute_metric("auroc", scores, targets.float()) == pytest.approx(0.875)
    with pytest.raises(ValueError, match="no class has both"):
        auroc(scores, torch.zeros_like(targets))


def test_correlations_on_worked_examples():
    # ranks differ by (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8
    assert spearman(torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]]), torch.tensor([2.0, 1, 4, 3, 5])) == (
        pytest.approx(0.8)
    )
    # centred (-1, 0, 1) and (-1, 1, 0): cov 1, variances 2 and 2 -> r = 0.5
    assert pearson(torch.tensor([[1.0], [2.0], [3.0]]), torch.tensor([[1.0], [3.0], [2.0]])) == pytest.approx(
        0.5
    )
    assert pearson(torch.ones(3, 1), torch.tensor([0.0, 1, 0])) == 0.0  # a constant prediction: uncorrelated
    with pytest.raises(ValueError, match="constant targets"):
        spearman(torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="one output per item"):
        pearson(torch.rand(3, 2), torch.rand(3))


def test_accuracy_of_one_binary_output_thresholds_at_one_half():
    scores = torch.tensor([[0.7], [0.2], [0.6], [0.4]])
    assert accuracy(scores, torch.tensor([[1.0], [0.0], [0.0], [0.0]])) == pytest.approx(0.75)
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == pytest.approx(0.5)


def test_dabs_probe_trains_adamw_at_a_constant_rate_for_100_epochs(monkeypatch):
    assert (DABS_PROBE.lr, DABS_PROBE.weight_decay, DABS_PROBE.epochs) == (1e-4, 1e-4, 100)
    assert not DABS_PROBE.standardize and not DABS_PROBE.select_on_valid and DABS_PROBE.hidden_dim is None
    rates, decays = [], []

    class SpyAdamW(torch.optim.AdamW):
        def step(self, closure=None):
            rates.append(self.param_groups[0]["lr"])
            decays.append(self.param_groups[0]["weight_decay"])
            return super().step(closure)

    monkeypatch.setattr(torch.optim, "AdamW", SpyAdamW)
    x, y = torch.randn(30, 4), torch.arange(30) % 3
    probe = LinearProbe(replace(DABS_PROBE, batch_size=8)).fit(
        features(x, y), features(x, y), "single", 3, "accuracy"
    )
    # 30 items in batches of 8, the last partial batch dropped as DABS's loader does: 3 steps an epoch
    assert probe.steps == 300 and len(rates) == 300
    assert set(rates) == {1e-4} and set(decays) == {1e-4}
    assert probe.valid_history == []  # no model selection
    assert torch.equal(probe.mean, torch.zeros(4)) and torch.equal(probe.std, torch.ones(4))
    assert LinearProbe(replace(DABS_PROBE, batch_size=64)).config.steps(30) == 100  # at least a step an epoch


def test_default_probe_keeps_adam_with_warmup_and_cosine():
    config = ProbeConfig()
    assert (config.optimizer, config.schedule, config.epochs) == ("adam", "warmup_cosine", None)
    assert config.steps(10_000) == config.max_steps


def test_regression_probe_fits_a_linear_target():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=generator)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.3
    config = ProbeConfig(lr=0.05, max_steps=400, warmup_steps=0, schedule="constant", select_on_valid=False)
    probe = LinearProbe(config).fit(features(x, y), None, "regression", 1, "spearman")
    predictions = probe.predict_scores(x)
    assert predictions.shape == (256, 1)
    assert torch.nn.functional.mse_loss(predictions[:, 0], y) < 1e-3
    assert probe.evaluate(features(x, y), "pearson") > 0.999


def test_pearson_of_a_bce_output_is_taken_on_its_logit():
    x = torch.linspace(-3, 3, 40)[:, None]
    y = (x[:, 0] + 0.5 * torch.sin(5 * x[:, 0]) > 0).float()[:, None]
    config = ProbeConfig(lr=0.1, max_steps=200, warmup_steps=0, select_on_valid=False, standardize=False)
    probe = LinearProbe(config).fit(features(x, y), None, "multi", 1, "pearson")
    value = probe.evaluate(features(x, y), "pearson")
    assert value == pytest.approx(pearson(probe.predict_outputs(x), y))
    assert value != pytest.approx(pearson(probe.predict_scores(x), y), abs=1e-4)


def test_protocol_errors_name_the_fix():
    with pytest.raises(ValueError, match="warmup_steps=0 for schedule 'constant'"):
        ProbeConfig(schedule="constant")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        ProbeConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="epochs must be positive"):
        ProbeConfig(epochs=0)
    x = torch.randn(8, 2)
    with pytest.raises(ValueError, match="metric 'spearman' needs label_type 'regression'"):
        LinearProbe().fit(features(x, torch.arange(8) % 2), None, "single", 2, "spearman")
    with pytest.raises(ValueError, match="num_classes must be 1"):
        LinearProbe().fit(features(x, torch.randn(8)), None, "regression", 2, "spearman")
    with pytest.raises(ValueError, match=r"\[N\] float targets"):
        LinearProbe().fit(features(x, torch.randn(8, 1)), None, "regression", 1, "spearman")
    stream = iter([(x, torch.arange(8) % 2)] * 20)
    with pytest.raises(ValueError, match="pass num_samples"):
        LinearProbe(DABS_PROBE).fit_stream(stream, None, "single", 2, "accuracy")
