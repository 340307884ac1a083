"""The `hear` suite: every scene task under a folder of hear-preprocess task folders (`tasks/` as
hear-preprocess writes it or the HEAR archives unpack), probed like the other suites.

    ssl-lightning evaluate --suite hear --data_root tasks/ --ckpt NAME=runs/x/last.ckpt

Task names are the task folders' names; k-fold tasks run once per fold (HEAR's rotation: test = fold k,
valid = fold k+1) and report the mean. Event (timestamp) tasks are left out (the probes are clip-level).
The HEAR kit itself scores our models through `ssl_lightning.hear`; this suite is the library's own probe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ssl_lightning.data.audio.hear_task import METADATA, HearTaskDataModule, read_task_metadata
from ssl_lightning.eval.suites import Suite, SuiteTask

METRICS = {"multiclass": "accuracy", "multilabel": "mAP"}


def hear_tasks(root: str | Path) -> dict[str, SuiteTask]:
    """The scene tasks of the task folders under `root`, by folder name.

    Raises:
        FileNotFoundError: `root` is not a folder or holds no task folder (the message says what to pass).
    """
    root = Path(root).expanduser()
    folders = sorted(path.parent for path in root.glob(f"*/{METADATA}"))
    if not folders:
        raise FileNotFoundError(
            f"no HEAR task folder (*/{METADATA}) under {root}; pass --data_root the tasks/ folder that "
            "hear-preprocess writes"
        )
    tasks = {}
    for folder in folders:
        metadata = read_task_metadata_or_none(folder)
        if metadata is None:
            continue
        kfold = metadata["split_mode"] != "trainvaltest"
        folds = tuple(range(len(metadata["splits"]))) if kfold else None
        tasks[folder.name] = SuiteTask(folder.name, "hear", METRICS[metadata["prediction_type"]], folds=folds)
    return tasks


def read_task_metadata_or_none(folder: Path) -> dict[str, Any] | None:
    """The folder's task metadata, or None for an event task (left out of the suite)."""
    try:
        return read_task_metadata(folder)
    except NotImplementedError:
        return None


def hear_suite(root: str | Path) -> Suite:
    """The `hear` suite of the task folders under `root`."""

    def datamodule(task: str, root: str | None = None, fold: int | None = None, **kwargs: Any):
        return HearTaskDataModule(root=str(Path(root).expanduser() / task), fold=fold or 0, **kwargs)

    return Suite("hear", hear_tasks(root), datamodule)
