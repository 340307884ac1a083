"""LinearProbe on synthetic features with known answers."""

import pytest
import torch

from ssl_lightning.eval.features import FeatureSet
from ssl_lightning.eval.metrics import accuracy, aggregate_subclips, mean_average_precision
from ssl_lightning.eval.probe import LinearProbe, ProbeConfig

FAST = dict(max_steps=200, warmup_steps=20, eval_every=50)


def _blobs(num_clips: int, seed: int, num_classes: int = 4, dim: int = 16, subclips: int = 2) -> FeatureSet:
    """Well-separated Gaussian blobs, `subclips` rows per clip sharing the clip's label."""
    g = torch.Generator().manual_seed(seed)
    centers = 6 * torch.eye(num_classes, dim)
    clip_labels = torch.randint(num_classes, (num_clips,), generator=g)
    clip_id = torch.arange(num_clips).repeat_interleave(subclips)
    labels = clip_labels[clip_id]
    return FeatureSet(centers[labels] + torch.randn(len(labels), dim, generator=g), labels, clip_id)


def _xor(n: int, seed: int) -> FeatureSet:
    """2-D XOR: class = (x0 > 0) != (x1 > 0), not linearly separable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=g) * 2 - 1
    labels = ((x[:, 0] > 0) != (x[:, 1] > 0)).long()
    return FeatureSet(x, labels, torch.arange(n))


def _multi_label(n: int, seed: int, num_classes: int = 5, dim: int = 24) -> FeatureSet:
    """Multi-hot targets (each class on with p=0.3) linearly embedded, plus noise."""
    g = torch.Generator().manual_seed(seed)
    targets = (torch.rand(n, num_classes, generator=g) < 0.3).float()
    projection = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(123))
    features = targets @ projection + 0.3 * torch.randn(n, dim, generator=g)
    return FeatureSet(features, targets, torch.arange(n))


def test_linear_probe_learns_separable_classes():
    train, test = _blobs(200, seed=0), _blobs(100, seed=1)
    probe = LinearProbe().fit(train, None, "single", 4, "accuracy")  # the default config
    assert probe.evaluate(test, "accuracy") >= 0.99
    scores = probe.predict_scores(test.features)
    assert scores.shape == (200, 4)
    torch.testing.assert_close(scores.sum(dim=1), torch.ones(200))


def test_evaluate_averages_subclip_probabilities_per_clip():
    train, test = _blobs(100, seed=0), _blobs(50, seed=1, subclips=3)
    probe = LinearProbe(ProbeConfig(max_steps=20, warmup_steps=0)).fit(train, None, "single", 4, "accuracy")
    scores = probe.predict_scores(test.features)
    clip_scores, clip_labels, _ = aggregate_subclips(scores, test.clip_id, test.labels)
    expected = (clip_scores.argmax(1) == clip_labels).float().mean().item()
    assert len(clip_labels) == 50
    assert expected != pytest.approx(accuracy(scores, test.labels))  # aggregation changes the answer here
    assert probe.evaluate(test, "accuracy") == pytest.approx(expected)


def test_mlp_probe_learns_xor_that_a_linear_probe_cannot():
    train, test = _xor(1000, seed=0), _xor(500, seed=1)
    config = dict(max_steps=600, warmup_steps=50, lr=1e-2, select_on_valid=False)
    linear = LinearProbe(ProbeConfig(**config)).fit(train, None, "single", 2, "accuracy")
    mlp = LinearProbe(ProbeConfig(hidden_dim=64, **config)).fit(train, None, "single", 2, "accuracy")
    # No half-plane classifies more than 2/3 of uniform XOR points (brute force over lines: 0.667).
    assert linear.evaluate(test, "accuracy") < 0.75
    assert mlp.evaluate(test, "accuracy") > 0.95


def test_multi_label_probe_reaches_high_map():
    train, test = _multi_label(600, seed=0), _multi_label(300, seed=1)
    probe = LinearProbe(ProbeConfig(lr=1e-2, **FAST)).fit(train, test, "multi", 5, "mAP")
    scores = probe.predict_scores(test.features)
    assert ((scores > 0) & (scores < 1)).all()
    assert mean_average_precision(scores, test.labels) > 0.95
    assert probe.evaluate(test, "mAP") > 0.95


def test_same_seed_same_head_other_seed_other_head_and_global_rng_untouched():
    train = _blobs(100, seed=0)
    rng_before = torch.get_rng_state()

    def fit(seed: int) -> LinearProbe:
        return LinearProbe(ProbeConfig(max_steps=30, warmup_steps=5, seed=seed)).fit(
            train, None, "single", 4, "accuracy"
        )

    a, b, c = fit(0), fit(0), fit(1)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert torch.equal(a.predict_scores(train.features), b.predict_scores(train.features))
    assert not torch.allclose(a.predict_scores(train.features), c.predict_scores(train.features))


def _flippable_blobs(n: int, seed: int, flip: bool) -> FeatureSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(2, (n,), generator=g)
    features = torch.randn(n, 8, generator=g)
    features[:, 0] += 4 * labels - 2
    return FeatureSet(features, 1 - labels if flip else labels, torch.arange(n))


def test_valid_selection_keeps_the_best_head():
    # The valid split has the train mapping flipped, so the more the head learns the worse it does
    # on valid: selection must return the first evaluated head, not the last one.
    train, valid = _flippable_blobs(200, seed=1, flip=False), _flippable_blobs(100, seed=2, flip=True)
    config = dict(max_steps=100, warmup_steps=10, eval_every=10, lr=1e-2)
    selected = LinearProbe(ProbeConfig(**config)).fit(train, valid, "single", 2, "accuracy")
    last = LinearProbe(ProbeConfig(select_on_valid=False, **config))
    last.fit(train, valid, "single", 2, "accuracy")
    steps, values = zip(*selected.valid_history, strict=True)
    assert steps == tuple(range(10, 101, 10))
    assert selected.best_step == 10 and selected.best_valid == max(values)
    assert selected.evaluate(valid, "accuracy") == pytest.approx(selected.best_valid)
    assert selected.evaluate(valid, "accuracy") > last.evaluate(valid, "accuracy") + 0.2
    assert last.valid_history == [] and last.best_step is None
    assert values[-1] == pytest.approx(last.evaluate(valid, "accuracy"))


def test_fit_restores_thread_count():
    before = torch.get_num_threads()
    LinearProbe(ProbeConfig(max_steps=2, warmup_steps=0, num_threads=1)).fit(
        _blobs(10, seed=0), None, "single", 4, "accuracy"
    )
    assert torch.get_num_threads() == before


def test_errors():
    train = _blobs(20, seed=0)
    probe = LinearProbe(ProbeConfig(max_steps=2, warmup_steps=0))
    with pytest.raises(RuntimeError, match="before fit"):
        probe.predict_scores(train.features)
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        probe.fit(train, None, "single", 3, "accuracy")
    with pytest.raises(ValueError, match=r"\[N, 4\] multi-hot"):
        probe.fit(train, None, "multi", 4, "mAP")
    with pytest.raises(ValueError, match="unknown metric"):
        probe.fit(train, None, "single", 4, "top5")
    with pytest.raises(ValueError, match="label_type"):
        probe.fit(train, None, "multiclass", 4, "accuracy")
    with pytest.raises(ValueError, match="metric 'mAP' needs label_type 'multi'"):
        probe.fit(train, None, "single", 4, "mAP")
    probe.fit(train, None, "single", 4, "accuracy")
    with pytest.raises(ValueError, match=r"expected \[N, 16\]"):
        probe.predict_scores(torch.zeros(3, 8))
    with pytest.raises(ValueError, match="warmup_steps=200"):
        ProbeConfig(max_steps=100, warmup_steps=200)
    with pytest.raises(ValueError, match="lr must be positive"):
        ProbeConfig(lr=0.0)
