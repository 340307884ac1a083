"""Evaluation suites: a named list of tasks, how each is probed, and the datamodule that serves it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import lightning as L

from ssl_lightning.data.embedded.hares_mini import TASKS as HARES_MINI_TASKS
from ssl_lightning.data.embedded.hares_mini import HaresMiniDataModule
from ssl_lightning.eval.probe import ProbeConfig

DOMAINS = ("environment", "speech", "music")


@dataclass(frozen=True)
class SuiteTask:
    """How one task of a suite is probed; its classes and label type come from its datamodule.

    Attributes:
        name: the task's name in reports.
        domain: "environment", "speech" or "music" (the HARES sub-suites); DABS: its domains.
        metric: a key of `ssl_lightning.eval.metrics.METRICS` ("accuracy", "mAP", "all_slots", "auroc", ...).
        hidden_dim: the probe head's hidden layer (None: linear; HARES AudioSet: an MLP of 512).
        eval_crops: None: evaluate on contiguous sub-clips; K: on K equally spaced, overlapping crops.
        folds: None, or the folds of a cross-validated task (each the test fold once; scores averaged).
        svm: the paper scores this task with a linear SVM on cached features (`evaluate --svm` does too).
        paper: published scores of this task, in percent, by model (e.g. the HARES paper's Table 4).
        probe_batch_size: the probe's batch size on this task (DABS: the data set's), else the probe's own.
    """

    name: str
    domain: str
    metric: str
    hidden_dim: int | None = None
    eval_crops: int | None = None
    folds: tuple[int, ...] | None = None
    svm: bool = False
    paper: dict[str, float] = field(default_factory=dict, hash=False, compare=False)
    probe_batch_size: int | None = None


@dataclass(frozen=True)
class Suite:
    """Tasks of one benchmark; `datamodule(task, fold=None, **kwargs)` builds the loaders of a task (of one
    fold for cross-validated tasks); `kwargs` are root, batch_size, num_workers. `paper_models`: the
    published models whose scores (`SuiteTask.paper`) reports show by default.

    `score_over`: the suite score is the mean over its "tasks" (HARES) or over its "domains" (DABS: the
    mean of the domain averages). `paper_scores`: published domain and suite scores (keyed by domain or
    suite name, then model, in percent) where a paper gives them rather than averaging its task scores.
    `probe`: the suite's probe protocol, used when an evaluation names none. `canonical_only`: averages
    are reported only over tasks run on their canonical data (False for suites never comparable to a
    paper, e.g. embedded stand-ins)."""

    name: str
    tasks: dict[str, SuiteTask]
    datamodule: Callable[..., L.LightningDataModule]
    paper_models: tuple[str, ...] = ()
    score_over: Literal["tasks", "domains"] = "tasks"
    paper_scores: dict[str, dict[str, float]] = field(default_factory=dict, hash=False, compare=False)
    probe: ProbeConfig | None = None
    canonical_only: bool = True

    def select(self, names: list[str] | None) -> list[SuiteTask]:
        """The named tasks (all when `names` is None), with a clear error for unknown names."""
        if not names:
            return list(self.tasks.values())
        unknown = [n for n in names if n not in self.tasks]
        if unknown:
            raise ValueError(f"suite {self.name!r} has no task {unknown}; its tasks are {list(self.tasks)}")
        return [self.tasks[n] for n in names]


def _hares_mini(
    task: str, root: str | None = None, fold: int | None = None, **kwargs: Any
) -> HaresMiniDataModule:
    return HaresMiniDataModule(task=task, root=root, **kwargs)


HARES_MINI = {name: SuiteTask(name, spec.domain, spec.metric) for name, spec in HARES_MINI_TASKS.items()}

HARES_MINI_SUITE = Suite("hares-mini", HARES_MINI, _hares_mini)
