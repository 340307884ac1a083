"""A fit killed with SIGKILL after step k and resumed with `--ckpt_path last` ends bit-identical to the
uninterrupted fit (data order, per-item random crops, views, optimizer and schedule), through the CLI:
mid-epoch and at an epoch boundary, for an in-memory audio datamodule, for SimCLR's views on digits and
for the streaming datamodule. Before the fix a resumed run re-trained the epoch's first batches (or
replayed epoch 0's order) and drew other random numbers: max abs weight diff 0.02-0.07."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.data.sharding import shard_audio

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
OVERLAYS = RECIPES / "overlays"
SR = 16000
STEPS = 7
EPOCH_BATCHES = 3

KILL_CALLBACK = '''
import os
import signal

import lightning as L


class KillAt(L.Callback):
    """SIGKILL this process when global step `step` is about to start (its checkpoint is on disk)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
'''

SUPERVISED = [
    RECIPES / "supervised_hares_mini.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/ByolAEncoder.yaml",
]
SIMCLR = [
    RECIPES / "simclr_rq_image.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/TimmImageEncoder.yaml",
    OVERLAYS / "tiny/SimCLR.yaml",
    OVERLAYS / "tiny/DigitsDataModule.yaml",
]


def fit(cwd: Path, configs: list[Path], dirpath: Path, *extra: str) -> subprocess.CompletedProcess:
    """`lightning fit` of `configs`: STEPS steps, epochs of EPOCH_BATCHES batches, a checkpoint per step."""
    command = [sys.executable, "-m", "ssl_lightning.cli", "fit"]
    for config in configs:
        command += ["--config", str(config)]
    command += [
        f"--trainer.max_steps={STEPS}",
        f"--trainer.limit_train_batches={EPOCH_BATCHES}",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.callbacks=[]",
        f"--checkpoint.dirpath={dirpath}",
        "--checkpoint.every_n_train_steps=1",
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd), os.environ.get("PYTHONPATH", "")])}
    # Output goes to files, not pipes, and the fit runs in its own process group, killed when it ends: a
    # DataLoader worker orphaned by the SIGKILL can outlive its parent and would hold a pipe open forever.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=err, text=True, start_new_session=True
        )
        try:
            process.wait(timeout=600)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(command, process.returncode, out.read(), err.read())


def tensors(state: dict, prefix: str = "") -> dict:
    """The tensors of a state dict, a module's extra state (a dict of tensors and numbers) flattened into it;
    numbers become tensors."""
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict):
            flat |= tensors(value, f"{prefix}{key}.")
        elif value is not None:
            flat[prefix + key] = torch.as_tensor(value)
    return flat


def max_weight_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between the state dicts of two checkpoints (same keys asserted)."""
    first = tensors(torch.load(a, weights_only=False)["state_dict"])
    second = tensors(torch.load(b, weights_only=False)["state_dict"])
    assert first.keys() == second.keys()
    return max((first[k].double() - second[k].double()).abs().max().item() for k in first if first[k].numel())


def check_kill_and_resume(
    tmp_path: Path, configs: list[Path], kill_steps: tuple[int, ...], *extra: str
) -> None:
    """The uninterrupted fit, then for each k a fit killed before step k and resumed: every weight equal."""
    (tmp_path / "killcb.py").write_text(KILL_CALLBACK)
    full = fit(tmp_path, configs, tmp_path / "full", *extra)
    assert full.returncode == 0, full.stderr[-3000:]
    assert torch.load(tmp_path / "full" / "last.ckpt", weights_only=False)["global_step"] == STEPS
    for step in kill_steps:
        dirpath = tmp_path / f"killed_at_{step}"
        killed = fit(
            tmp_path,
            configs,
            dirpath,
            *extra,
            "--trainer.callbacks+=killcb.KillAt",
            f"--trainer.callbacks.step={step}",
        )
        assert killed.returncode == -9, f"not killed at step {step}: {killed.stderr[-3000:]}"
        assert torch.load(dirpath / "last.ckpt", weights_only=False)["global_step"] == step
        resumed = fit(tmp_path, configs, dirpath, *extra, "--ckpt_path=last")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        diff = max_weight_diff(tmp_path / "full" / "last.ckpt", dirpath / "last.ckpt")
        assert diff == 0.0, f"killed before step {step} and resumed: max abs weight diff {diff}"


@pytest.mark.slow
def test_supervised_hares_mini_resumes_exactly_mid_epoch_and_at_epoch_boundary(tmp_path):
    check_kill_and_resume(tmp_path, SUPERVISED, (4, 3))


@pytest.mark.slow
def test_a_recipe_with_max_epochs_resumes_exactly_mid_epoch(tmp_path):
    """With `max_epochs` Lightning sets the train loader up before it reads the checkpoint (the schedule
    asks for `estimated_stepping_batches`) and skips its copy of the loader state: the datamodule's
    copy restores it. Before: the resumed run restarted the epoch (max abs weight diff > 0)."""
    check_kill_and_resume(tmp_path, SUPERVISED, (4,), "--trainer.max_epochs=3")


@pytest.mark.slow
def test_simclr_views_on_digits_resume_exactly_mid_epoch(tmp_path):
    check_kill_and_resume(tmp_path, SIMCLR, (5,))


BEATS_ITER1 = [
    RECIPES / "beats_iter1.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/BEATsEncoder.yaml",
    OVERLAYS / "tiny/MaskedAudioModeling.yaml",
]


@pytest.mark.slow
def test_beats_masked_audio_modelling_with_workers_resumes_exactly(tmp_path):
    """Masks and crops drawn in the step and in 2 loader workers: mid-epoch and at an epoch boundary."""
    workers = ("--data.init_args.batch_size=2", "--data.init_args.num_workers=2")
    check_kill_and_resume(tmp_path, BEATS_ITER1, (5, 3), *workers)


BYOL_RQ_AUDIO = [
    RECIPES / "byol_a_rq_audioset.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/ByolAEncoder.yaml",
    OVERLAYS / "tiny/BYOL.yaml",
]


def streaming_args(tmp_path: Path, num_clips: int, num_workers: int) -> list[str]:
    """The BYOL-A recipe's overrides for CPU (no SyncBatchNorm, checkpoints by step only) and `--data`: a
    StreamingAudioDataModule over `num_clips` 1 s noise clips in chunks of 2 clips:
    random 0.95 s crops in batches of 2 read by `num_workers` workers."""
    source = tmp_path / "clips"
    source.mkdir()
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, (num_clips, SR)).astype(np.float32)
    for k, clip in enumerate(noise):
        soundfile.write(source / f"{k:02d}.wav", clip, SR, subtype="PCM_16")
    shard_audio(source, tmp_path / "shards", max_seconds=None, chunk_bytes=2 * 2 * SR + 1000)
    init_args = {
        "train_dir": str(tmp_path / "shards"),
        "batch_size": 2,
        "num_workers": num_workers,
        "clip_seconds": 0.95,
    }
    data = {"class_path": "ssl_lightning.data.streaming.StreamingAudioDataModule", "init_args": init_args}
    return ["--trainer.sync_batchnorm=false", "--checkpoint.every_n_epochs=0", f"--data={json.dumps(data)}"]


@pytest.mark.slow
def test_streaming_with_workers_resumes_exactly_mid_epoch_and_after_a_limited_epoch(tmp_path):
    """BYOL (EMA teacher, RQ views) on 12 clips read by 2 workers: LitData epochs of 6 batches, of which each
    fit epoch takes 3 (limit_train_batches). Before the fix: max abs weight diff 0.034 (killed before step
    5) and 0.012 (before step 3: crops from the workers' global generators, the loader state never
    restored, LitData's epoch 1 continued or replayed)."""
    check_kill_and_resume(tmp_path, BYOL_RQ_AUDIO, (5, 3), *streaming_args(tmp_path, 12, num_workers=2))


BYOL_A_MIXUP = [
    RECIPES / "byol_a_audioset.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/ByolAEncoder.yaml",
    OVERLAYS / "tiny/BYOL.yaml",
]


@pytest.mark.slow
def test_byol_a_with_its_mixup_memory_resumes_exactly(tmp_path):
    """BYOL-A's views mix each input with remembered past inputs (`MemoryMixup`): the memory is saved in the
    checkpoint, so the resumed run mixes with the same backgrounds. Before: the resumed run started with an
    empty memory (max abs weight diff 0.033, killed before step 5)."""
    check_kill_and_resume(tmp_path, BYOL_A_MIXUP, (5,), *streaming_args(tmp_path, 12, num_workers=0))


DATA2VEC = [
    RECIPES / "data2vec_speech_hares_mini.yaml",
    OVERLAYS / "cpu_smoke.yaml",
    OVERLAYS / "tiny/Data2VecAudioEncoder.yaml",
    OVERLAYS / "tiny/Data2Vec.yaml",
]
DATA2VEC2_OPTIONS = """
model:
  init_args:
    encoder:
      init_args:
        config: {hidden_dropout: 0.1, layerdrop: 0.1}
    masking: {kind: block_1d, mask_prob: 0.5, mask_length: 5}
    clone_batch: 2
    visible_only: true
    decoder: {decoder_dim: 16, kernel_size: 7, groups: 4, layers: 2, input_dropout: 0.1}
"""


@pytest.mark.slow
def test_data2vec2_resumes_exactly_with_its_teacher_masks_noise_and_dropouts(tmp_path):
    """data2vec 2.0 (clones, visible-only student, decoder noise and input dropout, layer drop, the EMA
    teacher in the checkpoint): killed mid-epoch and resumed, every weight (student, teacher, decoder)
    equals the uninterrupted run's."""
    options = tmp_path / "data2vec2.yaml"
    options.write_text(DATA2VEC2_OPTIONS)
    check_kill_and_resume(tmp_path, [*DATA2VEC, options], (4,), "--data.init_args.batch_size=4")
