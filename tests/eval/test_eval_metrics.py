"""Worked examples for sub-clip aggregation, accuracy and macro mAP."""

import pytest
import torch
from sklearn.metrics import average_precision_score

from ssl_lightning.eval.metrics import accuracy, aggregate_subclips, compute_metric, mean_average_precision


def test_aggregation_averages_subclips_and_sorts_clips():
    # Clip 7 has two sub-clips whose argmaxes (0 and 2) are both wrong; their mean
    # [0.275, 0.45, 0.275] picks the right class 1. Clip 3 has a single sub-clip.
    scores = torch.tensor([[0.50, 0.45, 0.05], [0.20, 0.70, 0.10], [0.05, 0.45, 0.50]])
    clip_id = torch.tensor([7, 3, 7])
    labels = torch.tensor([1, 1, 1])
    clip_scores, clip_labels, clip_ids = aggregate_subclips(scores, clip_id, labels)
    assert clip_ids.tolist() == [3, 7]
    torch.testing.assert_close(clip_scores, torch.tensor([[0.20, 0.70, 0.10], [0.275, 0.45, 0.275]]))
    assert clip_labels.tolist() == [1, 1]
    assert accuracy(scores, labels) == pytest.approx(1 / 3)
    assert accuracy(clip_scores, clip_labels) == 1.0


def test_aggregation_of_multi_hot_labels_and_without_labels():
    scores = torch.tensor([[0.9, 0.1], [0.3, 0.5], [0.1, 0.7], [0.5, 0.3]])
    clip_id = torch.tensor([0, 1, 1, 0])
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    clip_scores, clip_labels, clip_ids = aggregate_subclips(scores, clip_id, labels)
    torch.testing.assert_close(clip_scores, torch.tensor([[0.7, 0.2], [0.2, 0.6]]))
    torch.testing.assert_close(clip_labels, torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert clip_ids.tolist() == [0, 1]
    assert aggregate_subclips(scores, clip_id)[1] is None


def test_aggregation_rejects_subclips_with_different_labels():
    scores = torch.rand(4, 3)
    with pytest.raises(ValueError, match=r"clip_id \[5\] carry different labels"):
        aggregate_subclips(scores, torch.tensor([2, 5, 5, 2]), torch.tensor([0, 1, 2, 0]))
    multi = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"clip_id \[0\]"):
        aggregate_subclips(scores, torch.tensor([0, 1, 0, 2]), multi)


def test_aggregation_rejects_bad_inputs():
    with pytest.raises(ValueError, match="clip_id must be an integer"):
        aggregate_subclips(torch.rand(3, 2), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="N=3"):
        aggregate_subclips(torch.rand(3, 2), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="labels has 2 rows"):
        aggregate_subclips(torch.rand(3, 2), torch.tensor([0, 1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="float"):
        aggregate_subclips(torch.ones(3, 2, dtype=torch.long), torch.tensor([0, 1, 2]))


def test_accuracy_worked_example():
    scores = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4]])
    labels = torch.tensor([0, 2, 1, 2])  # the last one is wrong (argmax 0)
    assert accuracy(scores, labels) == pytest.approx(0.75)
    assert compute_metric("accuracy", scores, labels) == pytest.approx(0.75)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        accuracy(scores, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="mAP"):
        accuracy(scores, torch.zeros(4, 3))


def test_map_worked_example_excludes_classes_without_positives():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.6], [0.6, 0.3, 0.2], [0.1, 0.4, 0.9]])
    targets = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0]])
    # Class 0 ranks 0.9(+) 0.6(-) 0.2(-) 0.1(+): AP = (1/1 + 2/4) / 2 = 0.75.
    # Class 1 ranks 0.8(+) 0.4(-) 0.3(+) 0.1(-): AP = (1/1 + 2/3) / 2 = 5/6.
    # Class 2 has no positive: left out of the mean (counting it as 0 would give 0.527...).
    expected = (0.75 + 5 / 6) / 2
    assert mean_average_precision(scores, targets) == pytest.approx(expected)
    assert compute_metric("mAP", scores, targets.float()) == pytest.approx(expected)
    # Giving class 2 a positive at its top score (0.9) makes its AP 1 and brings it into the mean.
    targets[3, 2] = 1
    assert mean_average_precision(scores, targets) == pytest.approx((0.75 + 5 / 6 + 1.0) / 3)


def test_map_matches_scikit_learn_on_random_data():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(50, 6, generator=g)
    targets = (torch.rand(50, 6, generator=g) < 0.3).long()
    expected = average_precision_score(targets.numpy(), scores.numpy(), average="macro")
    assert mean_average_precision(scores, targets) == pytest.approx(expected, abs=1e-6)


def test_map_rejects_bad_targets_and_compute_metric_rejects_unknown_names():
    with pytest.raises(ValueError, match="0/1"):
        mean_average_precision(torch.rand(3, 2), torch.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="no class has a positive"):
        mean_average_precision(torch.rand(3, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="accuracy"):
        mean_average_precision(torch.rand(3, 2), torch.tensor([0, 1, 1]))
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        compute_metric("f1", torch.rand(3, 2), torch.tensor([0, 1, 1]))
