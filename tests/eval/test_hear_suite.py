"""`ssl-lightning evaluate --suite hear`: the scene tasks of a hear-preprocess tasks/ folder, probed."""

import json
import runpy
from pathlib import Path

import pytest

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.eval import ProbeConfig
from ssl_lightning.eval.evaluate import evaluate
from ssl_lightning.eval.registry import get_suite

layout = runpy.run_path(str(Path(__file__).parents[1] / "layouts" / "HearTaskDataModule.py"))


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    """A tasks/ folder with a k-fold multiclass task, a multilabel task and an event task."""
    root = tmp_path_factory.mktemp("hear") / "tasks"
    layout["write_kfold_task"](root)
    layout["write_multilabel_task"](root)
    layout["write_event_task"](root)
    return root


def test_hear_suite_lists_the_scene_tasks_with_their_metric_and_folds(tasks):
    suite = get_suite("hear", str(tasks))
    kinds = {name: (task.metric, task.folds) for name, task in suite.tasks.items()}
    folders = {p.name: p for p in tasks.iterdir()}
    assert len(folders) == 3 and len(kinds) == 2  # the event task is left out
    kfold = next(name for name, (metric, folds) in kinds.items() if folds)
    splits = json.loads((folders[kfold] / "task_metadata.json").read_text())["splits"]
    assert kinds[kfold] == ("accuracy", tuple(range(len(splits))))
    assert sorted(metric for metric, _ in kinds.values()) == ["accuracy", "mAP"]


def test_evaluate_runs_the_hear_suite(tasks, tmp_path):
    results = evaluate(
        suite="hear",
        baselines=["random-init"],
        encoder=ByolAEncoder(d=64, channels=8),
        probe=ProbeConfig(max_steps=20, warmup_steps=2, eval_every=10),
        out_dir=str(tmp_path),
        data_root=str(tasks),
        batch_size=8,
        plot=False,
        progress=False,
    )
    suite = get_suite("hear", str(tasks))
    assert [r.task for r in results] == list(suite.tasks)
    for r in results:
        assert 0.0 <= r.value <= 1.0 and r.extra["canonical"] is True
        folds = suite.tasks[r.task].folds
        if folds:
            assert r.value == pytest.approx(sum(r.extra["folds"].values()) / len(folds))
    assert "*hear*" in (tmp_path / "suite.md").read_text()


def test_hear_suite_needs_a_tasks_folder(tmp_path):
    with pytest.raises(ValueError, match="--data_root"):
        get_suite("hear")
    with pytest.raises(FileNotFoundError, match="no HEAR task folder"):
        get_suite("hear", str(tmp_path))
