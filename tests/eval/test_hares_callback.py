"""`HaresSuite` on a tiny SimCLR fit of the hares-mini pool, probing two HARES tasks read from their tiny
layouts under one data root: `probe/<task>` metrics and a report per probed epoch and at the end of fit;
under 2-process DDP (gloo) rank 0 probes once while rank 1 waits; a resumed fit probes only its new epochs;
a bad data root or task name fails at construction.

Run as a script (`python test_hares_callback.py OUT HARES_ROOT`) this file is the DDP fit: Lightning's
`ddp` launcher starts rank 1 by running the same command again.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import runpy
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from ssl_lightning.augment import HaresViews
from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.data import HaresMiniDataModule
from ssl_lightning.eval.callback import HaresSuite
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.methods.simclr import SimCLR

LAYOUTS = Path(__file__).parents[1] / "layouts"
TASKS = ["birdsong", "fluent_speech_commands"]  # the cheapest on the tiny layouts (ESC-50 probes 5 folds)
PROBE = ProbeConfig(max_steps=10, warmup_steps=2, eval_every=5)
STEPS_PER_EPOCH = 2  # 16 pool clips in batches of 4: 4 batches (2 a rank under DDP), limited to 2
POOL = {"train": 16, "valid": 4}
DDP_TIMEOUT = 120  # s; the fit takes about 35 s on 2 busy CPU cores


def fit(
    out: Path, hares_root: Path, max_epochs: int, ckpt_path: str | None = None, **trainer_args
) -> L.Trainer:
    """A tiny SimCLR fit on the hares-mini pool probed after every epoch: CSV metrics and the reports under
    `out/lightning_logs/version_0`, `last.ckpt` under `out/checkpoints`."""
    L.seed_everything(0)
    model = SimCLR(
        ByolAEncoder(d=16, channels=4), HaresViews(1.0, mix_beta=None), projection_dim=8, hidden_dim=16
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        limit_train_batches=STEPS_PER_EPOCH,
        limit_val_batches=0,
        logger=CSVLogger(out, version=0),
        callbacks=[
            HaresSuite(str(hares_root), tasks=TASKS, every_n_epochs=1, probe=PROBE, batch_size=16),
            ModelCheckpoint(out / "checkpoints", save_last=True),
        ],
        enable_progress_bar=False,
        enable_model_summary=False,
        **trainer_args,
    )
    data = HaresMiniDataModule(task="pool", batch_size=4, split_sizes=POOL)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path, weights_only=False)  # hparams hold the encoder
    return trainer


def probe_rows(log_dir: Path) -> list[tuple[int, dict[str, float]]]:
    """(step, {task: value}) of every row of `metrics.csv` that holds probe metrics, in logging order."""
    with (log_dir / "metrics.csv").open(newline="") as file:
        rows = [row for row in csv.DictReader(file) if row.get(f"probe/{TASKS[0]}")]
    return [(int(row["step"]), {task: float(row[f"probe/{task}"]) for task in TASKS}) for row in rows]


def check_reports(log_dir: Path, tags: list[str], steps: list[int]) -> None:
    """One report folder per tag, in the order logged at `steps`, each holding the suite table, the results
    and one JSON per task, with the values that went to the logger."""
    rows = probe_rows(log_dir)
    assert [step for step, _ in rows] == steps
    assert sorted(path.name for path in (log_dir / "probe").iterdir()) == sorted(tags)
    for tag, (_, logged) in zip(tags, rows, strict=True):
        report = log_dir / "probe" / tag
        results = json.loads((report / "results.json").read_text())["results"]
        assert [(r["task"], r["model"]) for r in results] == [(task, tag) for task in TASKS]
        assert {r["task"]: r["value"] for r in results} == pytest.approx(logged, rel=1e-6)
        assert sorted(path.name for path in (report / "tasks").iterdir()) == [
            f"{task}.json" for task in TASKS
        ]
        for task in TASKS:
            record = json.loads((report / "tasks" / f"{task}.json").read_text())
            assert record["results"][0]["value"] == pytest.approx(logged[task], rel=1e-6)
        suite = (report / "suite.md").read_text()
        assert f"| task | metric | {tag} |" in suite and all(f"| {task} |" in suite for task in TASKS)


@pytest.fixture(scope="module")
def hares_root(tmp_path_factory) -> Path:
    """The tiny layouts of the probed tasks' data sets under one root, in the folders HARES_DATA names."""
    root = tmp_path_factory.mktemp("hares")
    for name in ("BirdsongDataModule", "FluentSpeechCommandsDataModule"):
        runpy.run_path(str(LAYOUTS / f"{name}.py"))["make"](root)
    return root


@pytest.fixture(scope="module")
def two_epochs(hares_root, tmp_path_factory) -> Path:
    """The output folder of a 2-epoch fit."""
    out = tmp_path_factory.mktemp("two_epochs")
    trainer = fit(out, hares_root, max_epochs=2)
    assert Path(trainer.log_dir) == out / "lightning_logs" / "version_0"
    return out


def test_probes_after_every_epoch_and_at_the_end(two_epochs):
    log_dir = two_epochs / "lightning_logs" / "version_0"
    check_reports(log_dir, ["epoch1", "epoch2", "final"], [2, 4, 4])


def test_a_resumed_fit_probes_only_its_new_epochs(two_epochs, hares_root, tmp_path):
    last = two_epochs / "checkpoints" / "last.ckpt"
    trainer = fit(tmp_path, hares_root, max_epochs=3, ckpt_path=str(last))
    assert trainer.global_step == 3 * STEPS_PER_EPOCH
    check_reports(tmp_path / "lightning_logs" / "version_0", ["epoch3", "final"], [6, 6])


def run_to_end(command: list[str], timeout: float) -> tuple[int | None, str]:
    """Exit status (None: still running after `timeout` s) and output of `command`, run in its own process
    group, which is killed when it ends or times out (a rank left waiting would outlive the test)."""
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            status = None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        out.seek(0)
        return status, out.read()


@pytest.mark.slow
@pytest.mark.distributed
def test_under_ddp_rank_zero_probes_once_and_both_ranks_finish(hares_root, tmp_path):
    status, output = run_to_end(
        [sys.executable, __file__, str(tmp_path), str(hares_root)], timeout=DDP_TIMEOUT
    )
    assert status is not None, f"the DDP fit hung (still running after {DDP_TIMEOUT} s):\n{output[-4000:]}"
    assert status == 0, f"the DDP fit failed (exit {status}):\n{output[-4000:]}"
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output, f"the run did not start 2 processes:\n{output[-4000:]}"
    assert "rank 0 finished" in output and "rank 1 finished" in output
    for tag in ("epoch1", "epoch2", "final"):  # both ranks' stdout is in `output`: one table per probe
        assert output.count(f"| task | metric | {tag} |") == 1, output[-4000:]
    check_reports(tmp_path / "lightning_logs" / "version_0", ["epoch1", "epoch2", "final"], [2, 4, 4])


def test_a_missing_data_root_or_an_unknown_task_fails_at_construction(hares_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="HaresSuite data_root 'missing' is not a folder"):
        HaresSuite(data_root="missing")
    with pytest.raises(ValueError, match=r"suite 'hares' has no task \['esc-50'\]"):
        HaresSuite(str(hares_root), tasks=["birdsong", "esc-50"])
    with pytest.raises(
        FileNotFoundError, match=r"lacks the folder\(s\) of task\(s\) \{'nsynth_pitch': 'nsynth'\}"
    ):
        HaresSuite(str(hares_root), tasks=["birdsong", "nsynth_pitch"])


if __name__ == "__main__":
    out_dir, root = map(Path, sys.argv[1:])
    ddp = fit(out_dir, root, max_epochs=2, strategy="ddp", devices=2)
    print(f"rank {ddp.global_rank} finished", flush=True)
