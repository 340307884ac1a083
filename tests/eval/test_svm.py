"""The linear-SVM probe of the HARES paper's ESC-50 protocol."""

import runpy
from pathlib import Path

import pytest
import torch

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.eval.evaluate import evaluate
from ssl_lightning.eval.features import FeatureSet
from ssl_lightning.eval.svm import PAPER_C, LinearSVMProbe, select_c


def blobs(centres: list[tuple[float, float]], per_class: int, seed: int, spread: float = 0.1) -> FeatureSet:
    """Gaussian blobs around `centres`, one clip per point."""
    generator = torch.Generator().manual_seed(seed)
    points = torch.tensor(centres).repeat_interleave(per_class, 0)
    points = points + spread * torch.randn(points.shape, generator=generator)
    labels = torch.arange(len(centres)).repeat_interleave(per_class)
    return FeatureSet(points, labels, torch.arange(len(labels)))


def test_separable_classes_are_all_right_and_c_ties_pick_the_smallest():
    train, test = blobs([(0, 0), (4, 0), (0, 4)], 20, 0), blobs([(0, 0), (4, 0), (0, 4)], 10, 1)
    assert LinearSVMProbe(1e-2).fit(train).evaluate(test, 3) == 1.0
    c, accuracy = select_c(train, test, 3, grid=(1e-1, 1e-2))
    assert accuracy == {1e-1: 1.0, 1e-2: 1.0} and c == 1e-2


def test_scores_cover_every_class_and_average_over_sub_clips():
    train = blobs([(0, 0), (4, 0)], 10, 0)  # classes 0 and 1 of 3: class 2 never wins
    probe = LinearSVMProbe(1.0).fit(train)
    scores = probe.scores(torch.tensor([[0.0, 0.0], [4.0, 0.0]]), 3)
    assert (
        scores.shape == (2, 3)
        and torch.isinf(scores[:, 2]).all()
        and scores[:, :2].argmax(1).tolist() == [0, 1]
    )
    # two sub-clips of one clip of class 1, one nearer class 0's side than the other: their mean decides
    test = FeatureSet(torch.tensor([[3.0, 0.0], [4.5, 0.0]]), torch.tensor([1, 1]), torch.tensor([7, 7]))
    assert probe.evaluate(test, 3) == 1.0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="C must be positive"):
        LinearSVMProbe(0.0)
    multi = FeatureSet(torch.zeros(2, 2), torch.zeros(2, 3), torch.arange(2))
    with pytest.raises(ValueError, match="single-label"):
        LinearSVMProbe(1.0).fit(multi)


def test_evaluate_svm_scores_esc50_folds_with_the_papers_grid(tmp_path):
    layout = runpy.run_path(str(Path(__file__).parents[1] / "layouts" / "ESC50DataModule.py"))
    layout["make"](tmp_path / "data")
    (result,) = evaluate(
        suite="hares",
        tasks=["esc50"],
        baselines=["random-init"],
        encoder=ByolAEncoder(d=64, channels=8),
        out_dir=str(tmp_path / "out"),
        data_root=str(tmp_path / "data"),
        plot=False,
        progress=False,
        svm=True,
    )
    assert result.extra["protocol"] == "linear SVM on cached features"
    assert sorted(result.extra["svm_valid_accuracy"]) == sorted(PAPER_C)
    assert result.value == pytest.approx(sum(result.extra["folds"].values()) / 5)
