"""BEATs fine-tuning under DDP through the CLI: the hares-mini recipe as written (layer dropout 0.1) on
2 CPU processes (gloo, `--trainer.strategy ddp`). Skipped layers once left parameters without a gradient
and DDP stopped at the next step ("parameters that were not used in producing the loss")."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "beats_finetune_hares_mini.yaml"
OVERLAYS = REPO / "recipes" / "overlays"
STEPS = 6  # with seed 0, layers are dropped before the last step (the run failed there before the fix)


@pytest.mark.slow
@pytest.mark.distributed
def test_beats_finetuning_recipe_with_layer_dropout_runs_on_two_ddp_processes(tmp_path):
    config = yaml.safe_load(RECIPE.read_text())["model"]["init_args"]["encoder"]["init_args"]["config"]
    assert config["encoder_layerdrop"] > 0, (
        "the recipe has no layer dropout any more: this test checks nothing"
    )
    overlays = [
        OVERLAYS / "cpu_smoke.yaml",
        OVERLAYS / "tiny" / "BEATsEncoder.yaml",
        OVERLAYS / "tiny" / "SupervisedClassifier.yaml",
    ]
    command = [sys.executable, "-m", "ssl_lightning.cli", "fit", "--config", str(RECIPE)]
    for overlay in overlays:
        command += ["--config", str(overlay)]
    command += [
        "--trainer.strategy=ddp",
        "--trainer.devices=2",
        "--trainer.accelerator=cpu",
        f"--trainer.max_steps={STEPS}",
        "--trainer.enable_progress_bar=false",
    ]
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, f"DDP fine-tuning failed (exit {run.returncode}):\n{output[-4000:]}"
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output, f"the run did not start 2 processes:\n{output[-4000:]}"
    last = tmp_path / "runs" / "beats" / "finetune_hares_mini" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == STEPS
