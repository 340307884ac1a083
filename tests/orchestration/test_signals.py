"""SIGTERM from outside stops `lightning fit` and `ssl-lightning beats-loop` with exit status 143 (it was
0, so schedulers and `&&` chains read a pre-empted run as finished) after saving a resumable last.ckpt
(nothing was saved before), and a fit resumed from it completes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
OVERLAYS = RECIPES / "overlays"
SUPERVISED = [
    RECIPES / "supervised_hares_mini.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/ByolAEncoder.yaml",
]
SIGTERM_EXIT = 143


def start(cwd: Path, args: list[str]) -> subprocess.Popen:
    """`python -m ssl_lightning.cli ARGS` in the background."""
    command = [sys.executable, "-m", "ssl_lightning.cli", *args]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def terminate_when(process: subprocess.Popen, started: Path, timeout: float = 300) -> str:
    """Send SIGTERM once `started` exists (training is under way), then wait; the combined output."""
    deadline = time.monotonic() + timeout
    while not started.exists():
        assert process.poll() is None, f"exited before training started:\n{process.stdout.read()[-3000:]}"
        assert time.monotonic() < deadline, "training did not start in time"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    return process.communicate(timeout=timeout)[0]


def fit_args(dirpath: Path, max_steps: int) -> list[str]:
    args = ["fit"]
    for config in SUPERVISED:
        args += ["--config", str(config)]
    return args + [
        f"--trainer.max_steps={max_steps}",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks=[]",
        f"--checkpoint.dirpath={dirpath}",
        "--checkpoint.every_n_train_steps=1",
    ]


@pytest.mark.slow
def test_sigterm_saves_a_resumable_checkpoint_and_exits_143_from_fit(tmp_path):
    dirpath = tmp_path / "ckpt"
    process = start(tmp_path, fit_args(dirpath, max_steps=100_000))
    output = terminate_when(process, dirpath / "last.ckpt")
    assert process.returncode == SIGTERM_EXIT, output[-3000:]
    assert f"saved a resumable checkpoint to {dirpath / 'last.ckpt'}" in output
    stopped_at = torch.load(dirpath / "last.ckpt", weights_only=False)["global_step"]
    assert stopped_at >= 1

    resumed = subprocess.run(
        [sys.executable, "-m", "ssl_lightning.cli", *fit_args(dirpath, stopped_at + 2), "--ckpt_path=last"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(dirpath / "last.ckpt", weights_only=False)["global_step"] == stopped_at + 2


DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]
CLI = [sys.executable, "-m", "ssl_lightning.cli"]


@pytest.mark.slow
def test_sigterm_to_a_two_process_ddp_fit_stops_every_rank_with_143_and_a_resumable_checkpoint(tmp_path):
    """SIGTERM to the launching process (rank 0): Lightning forwards it to rank 1, both ranks stop (none
    hangs in a collective), rank 0 saves last.ckpt and the job exits 143; the fit resumes on 2 ranks."""
    dirpath = tmp_path / "ckpt"
    process = start(tmp_path, [*fit_args(dirpath, max_steps=100_000), *DDP])
    output = terminate_when(process, dirpath / "last.ckpt", timeout=240)
    assert process.returncode == SIGTERM_EXIT, output[-3000:]
    assert "[rank: 1] Received SIGTERM" in output and "weights_only" not in output
    assert f"saved a resumable checkpoint to {dirpath / 'last.ckpt'}" in output
    stopped_at = torch.load(dirpath / "last.ckpt", weights_only=False)["global_step"]
    resumed = subprocess.run(
        [*CLI, *fit_args(dirpath, stopped_at + 2), *DDP, "--ckpt_path=last"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(dirpath / "last.ckpt", weights_only=False)["global_step"] == stopped_at + 2


@pytest.mark.slow
def test_sigterm_stops_beats_loop_with_143_and_no_done_marker(tmp_path):
    small_data = tmp_path / "small_data.yaml"
    small_data.write_text(
        "data:\n  init_args:\n    batch_size: 4\n    num_workers: 0\n"
        "trainer:\n  max_steps: 100000\n  limit_train_batches: 1000\n  limit_val_batches: 0\n"
        "checkpoint:\n  every_n_train_steps: 1\n"
    )
    loop_args = [
        "--run-dir", "runs/beats",
        "--until", "iter1",
        "--recipes-dir", str(RECIPES),
        "--config", str(OVERLAYS / "cpu_smoke.yaml"),
        "--config", str(small_data),
        "--stage-config", f"iter1={OVERLAYS / 'tiny/BEATsEncoder.yaml'}",
        "--stage-config", f"iter1={OVERLAYS / 'tiny/MaskedAudioModeling.yaml'}",
    ]  # fmt: skip
    process = start(tmp_path, ["beats-loop", *loop_args])
    iter1 = tmp_path / "runs" / "beats" / "iter1"
    output = terminate_when(process, iter1 / "checkpoints" / "last.ckpt")
    assert process.returncode == SIGTERM_EXIT, output[-3000:]
    assert "saved a resumable checkpoint" in output
    assert not (iter1 / "DONE").exists()
