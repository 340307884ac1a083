"""Shared fixtures: data root for the embedded benchmark, a tiny encoder, synthetic audio batches; and the
no-skip rule: a run that skips (or xfails) any test exits non-zero, so a fresh clone runs every test."""

from __future__ import annotations

import os

import pytest
import torch
from einops import rearrange
from torch import nn
from torch.utils.data import DataLoader

SKIPPED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        SKIPPED.append(report.nodeid)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:
        SKIPPED.append(report.nodeid)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Turn a passing run with skipped tests into a failing one."""
    if SKIPPED and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int) -> None:
    if SKIPPED:
        terminalreporter.write_line(
            f"FAILED by the no-skip rule (tests/conftest.py): {len(SKIPPED)} skipped or xfailed: "
            + ", ".join(SKIPPED),
            red=True,
        )


class TinyEncoder(nn.Module):
    """`waveform[B, T] -> frames[B, T // 64, dim]`: ReLU of a linear map of 64-sample frames."""

    frame = 64

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed_dim = dim
        self.proj = nn.Linear(self.frame, dim)

    def forward(self, waveform, padding_mask=None):
        n = waveform.shape[1] // self.frame
        frames = rearrange(waveform[:, : n * self.frame], "b (n k) -> b n k", k=self.frame)
        return self.proj(frames).relu(), None


def synthetic_clips(num: int, num_classes: int = 3, samples: int = 640, seed: int = 0) -> list[dict]:
    """Class c is a sine of frequency (c + 1) * 400 Hz at 16 kHz plus noise: linearly separable spectra."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    items = []
    for i in range(num):
        c = i % num_classes
        phase = torch.rand(1, generator=g) * 6.28
        wave = torch.sin(2 * torch.pi * (c + 1) * 400 * t + phase) + 0.1 * torch.randn(samples, generator=g)
        items.append(
            {
                "audio": wave,
                "padding_mask": torch.zeros(samples, dtype=torch.bool),
                "label": torch.tensor(c),
                "clip_id": torch.tensor(i),
            }
        )
    return items


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory) -> str:
    """The embedded data sets are generated once per test session into a temporary root
    (or into `$SSL_LIGHTNING_DATA` when the caller set it, to reuse a cache)."""
    root = os.environ.get("SSL_LIGHTNING_DATA") or str(tmp_path_factory.mktemp("ssl_lightning_data"))
    os.environ["SSL_LIGHTNING_DATA"] = root
    return root


@pytest.fixture
def tiny_encoder_cls():
    return TinyEncoder


@pytest.fixture
def clip_loader():
    def make(num: int = 48, num_classes: int = 3, batch_size: int = 8, seed: int = 0, shuffle: bool = True):
        return DataLoader(
            synthetic_clips(num, num_classes, seed=seed), batch_size=batch_size, shuffle=shuffle
        )

    return make
