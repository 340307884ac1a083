"""Helpers of the two-view method tests (SimCLR, BYOL, Contrastive Quant); none is autouse."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Sampler


class AlternatingViews(nn.Module):
    """Deterministic waveform views: odd calls reverse time, even calls roll by 100 samples, so the two
    views of a step are always the same (a resumed run and every DDP rank see the views of one process)."""

    domain = "waveform"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, waveform: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        self.calls += 1
        return waveform.flip(-1) if self.calls % 2 else waveform.roll(100, -1)


@pytest.fixture
def single_thread():
    """Tiny models run far faster on one thread than on two shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def alternating_views_cls() -> type[AlternatingViews]:
    return AlternatingViews


@pytest.fixture
def quiet_trainer(tmp_path) -> Callable[..., L.Trainer]:
    """A CPU `Trainer` factory without logger, progress bar, model summary or checkpoints (unless asked)."""

    def make(**kwargs: Any) -> L.Trainer:
        defaults = {"enable_checkpointing": False, "default_root_dir": tmp_path, "accelerator": "cpu"}
        return L.Trainer(
            logger=False, enable_progress_bar=False, enable_model_summary=False, **{**defaults, **kwargs}
        )

    return make


class RankInterleaved(Sampler[int]):
    """Indices rank, rank + world, rank + 2 world, ... (read when iterated, once DDP has started), so
    that step s of 2 ranks with batch b covers the clips of step s of one process with batch 2b
    (Lightning's own DistributedSampler would shuffle the training clips)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def _rank_world(self) -> tuple[int, int]:
        return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)

    def __iter__(self):
        rank, world = self._rank_world()
        return iter(range(rank, self.size, world))

    def __len__(self) -> int:
        return self.size // self._rank_world()[1]


@pytest.fixture
def rank_interleaved_cls() -> type[RankInterleaved]:
    return RankInterleaved
