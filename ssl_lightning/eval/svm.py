"""Linear SVM on frozen, cached features: the HARES paper's ESC-50 protocol (after Recasens et al. 2021).

"We use the SVM implementation of SciKit-Learn ... full 5-second clips for training and evaluation ... We
sweep the value for the SVM regularization parameter in {3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2}. We use
the first split to pick the optimal value and report the average of all the splits." Here C is picked on the
first fold's valid split (the next fold), not on its test fold, so no test score chooses it; the paper's
"10 epochs worth of augmented samples" are not drawn (features of the plain clips).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ssl_lightning.eval.features import FeatureSet
from ssl_lightning.eval.metrics import aggregate_subclips, compute_metric

PAPER_C = (3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2)


class LinearSVMProbe:
    """A one-vs-rest linear SVM (scikit-learn `LinearSVC`) on standardised sub-clip features; sub-clip
    decision values are averaged per clip before the metric (single-label tasks, accuracy)."""

    def __init__(self, c: float, seed: int = 0) -> None:
        if not c > 0:
            raise ValueError(f"the SVM's C must be positive, got {c!r}")
        self.c, self.seed = c, seed
        self.model = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def fit(self, train: FeatureSet) -> LinearSVMProbe:
        """Fit on the sub-clips of `train` ([N] class ids)."""
        from sklearn.svm import LinearSVC

        if train.labels.ndim != 1:
            raise ValueError("the SVM probe takes single-label tasks ([N] class ids)")
        features = train.features.double()
        self.mean = features.mean(dim=0)
        self.std = features.std(dim=0, unbiased=False).clamp_min(1e-6)
        self.model = LinearSVC(C=self.c, random_state=self.seed, max_iter=20000)
        self.model.fit(((features - self.mean) / self.std).numpy(), train.labels.numpy())
        return self

    def scores(self, features: Tensor, num_classes: int) -> Tensor:
        """[N, C] decision values (classes the training split lacks score -inf)."""
        if self.model is None:
            raise RuntimeError("LinearSVMProbe.scores called before fit")
        values = self.model.decision_function(((features.double() - self.mean) / self.std).numpy())
        values = torch.as_tensor(values).reshape(len(features), -1)
        if values.shape[1] == 1:  # two classes: one decision value for the second
            values = torch.cat([-values, values], dim=1)
        out = torch.full((len(features), num_classes), float("-inf"), dtype=torch.float64)
        out[:, torch.as_tensor(self.model.classes_)] = values
        return out

    def evaluate(self, test: FeatureSet, num_classes: int) -> float:
        """Clip-level accuracy on `test`."""
        scores, labels, _ = aggregate_subclips(
            self.scores(test.features, num_classes), test.clip_id, test.labels
        )
        return compute_metric("accuracy", scores, labels)


def select_c(
    train: FeatureSet, valid: FeatureSet, num_classes: int, grid: Sequence[float] = PAPER_C, seed: int = 0
) -> tuple[float, dict[float, float]]:
    """The C of `grid` with the best valid accuracy (the smallest on ties), and every C's valid accuracy."""
    accuracy = {c: LinearSVMProbe(c, seed).fit(train).evaluate(valid, num_classes) for c in grid}
    return max(grid, key=lambda c: (accuracy[c], -c)), accuracy
