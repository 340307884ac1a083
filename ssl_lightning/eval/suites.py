"""Evaluation suites: a named list of tasks and the datamodule that serves each task."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L

from ssl_lightning.data.embedded.hares_mini import TASKS as HARES_MINI_TASKS
from ssl_lightning.data.embedded.hares_mini import HaresMiniDataModule, TaskSpec


@dataclass(frozen=True)
class Suite:
    """Tasks of one benchmark; `datamodule(task, **kwargs)` builds the loader of a task."""

    name: str
    tasks: dict[str, TaskSpec]
    datamodule: Callable[..., L.LightningDataModule]

    def select(self, names: list[str] | None) -> list[TaskSpec]:
        """The named tasks (all when `names` is None), with a clear error for unknown names."""
        if not names:
            return list(self.tasks.values())
        unknown = [n for n in names if n not in self.tasks]
        if unknown:
            raise ValueError(f"suite {self.name!r} has no task {unknown}; its tasks are {list(self.tasks)}")
        return [self.tasks[n] for n in names]


def _hares_mini(task: str, root: str | None = None, **kwargs: Any) -> HaresMiniDataModule:
    return HaresMiniDataModule(task=task, root=root, **kwargs)


SUITES: dict[str, Suite] = {
    "hares-mini": Suite("hares-mini", dict(HARES_MINI_TASKS), _hares_mini),
}


def get_suite(name: str) -> Suite:
    """The suite called `name`, with the list of known suites in the error."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; available suites: {', '.join(SUITES)}")
    return SUITES[name]
