"""hares-mini: a small, offline, procedurally generated audio benchmark in the image of HARES.

Six tasks over the three HARES domains (environment, speech, music) plus an unlabeled pool for
pre-training, generated on first use (seeded, cached as 16-bit wav + CSV manifests).
"""

from ssl_lightning.data.embedded.hares_mini.build import ensure_hares_mini, generate_clip, hares_mini_dir
from ssl_lightning.data.embedded.hares_mini.datamodule import HaresMiniDataModule
from ssl_lightning.data.embedded.hares_mini.registry import (
    POOL,
    TASKS,
    PoolSpec,
    TaskSpec,
    get_spec,
    get_task,
)

__all__ = [
    "POOL",
    "TASKS",
    "HaresMiniDataModule",
    "PoolSpec",
    "TaskSpec",
    "ensure_hares_mini",
    "generate_clip",
    "get_spec",
    "get_task",
    "hares_mini_dir",
]
