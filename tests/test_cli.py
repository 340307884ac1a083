import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ssl_lightning.cli import main

RECIPE = "recipes/supervised_hares_mini.yaml"
REPO = Path(__file__).resolve().parents[1]


def test_help_lists_lightning_and_extra_subcommands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("fit", "validate", "test", "predict", "evaluate"):
        assert command in out


def test_evaluate_help(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--suite" in out and "--ckpt" in out and "--baselines" in out


def test_wrong_config_key_names_the_key(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", RECIPE, "--model.init_args.optim.lrr", "0.1", "--print_config"])
    assert exit_info.value.code != 0
    assert "lrr" in capsys.readouterr().err


def test_dotted_override_and_several_configs(capsys, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("trainer:\n  max_steps: 7\n")
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                RECIPE,
                "--config",
                str(extra),
                "--model.init_args.optim.lr",
                "0.123",
                "--print_config",
            ]
        )
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "lr: 0.123" in out


def _tiny_fit(*extra: str) -> list[str]:
    """`fit` of the supervised recipe, tiny and for 2 steps, with `extra` overrides."""
    configs = [RECIPE, "recipes/overlays/cpu_smoke.yaml", "recipes/overlays/tiny/ByolAEncoder.yaml"]
    args = ["fit"] + [item for config in configs for item in ("--config", str(REPO / config))]
    return args + ["--trainer.callbacks=[]", "--trainer.enable_progress_bar=false", *extra]


def test_ckpt_path_last_finds_the_previous_runs_checkpoint_in_the_default_folder(
    tmp_path, monkeypatch, capsys
):
    """Before: Lightning looked in the new run's empty `runs/version_1`, warned, and trained from step 0."""
    monkeypatch.chdir(tmp_path)
    main(_tiny_fit())
    previous = tmp_path / "runs" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(previous, weights_only=False)["global_step"] == 2
    main(_tiny_fit("--trainer.max_steps=3", "--ckpt_path=last"))
    assert (
        f"--ckpt_path last: resuming from {Path('runs/version_0/checkpoints/last.ckpt')}"
        in capsys.readouterr().err
    )
    assert (
        torch.load(tmp_path / "runs" / "version_1" / "checkpoints" / "last.ckpt", weights_only=False)[
            "global_step"
        ]
        == 3
    )


def test_ckpt_path_last_without_a_previous_run_names_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError, match=r"no checkpoint matches runs/\*/checkpoints/last\*\.ckpt.*PATH"
    ):
        main(_tiny_fit("--ckpt_path=last"))


def test_unwritable_checkpoint_folder_fails_before_training(tmp_path, monkeypatch):
    """Before: the fit trained up to its first save and then died (a read-only folder: PermissionError).
    The folder here lies under a file, which no user, root included, can write to."""
    (tmp_path / "a_file").write_text("")
    folder = tmp_path / "a_file" / "checkpoints"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PermissionError, match=rf"cannot write checkpoints to {folder}.*--checkpoint.dirpath"):
        main(_tiny_fit(f"--checkpoint.dirpath={folder}"))
    assert not (tmp_path / "runs" / "csv" / "version_0" / "metrics.csv").exists(), "it trained first"


def test_sync_batchnorm_on_cpu_names_the_fix(tmp_path, monkeypatch):
    """Before: PyTorch's "SyncBatchNorm layers only work with GPU modules" at the first forward pass."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="sync_batchnorm is true but DDP runs on cpu.*sync_batchnorm false"):
        main(_tiny_fit("--trainer.strategy=ddp", "--trainer.sync_batchnorm=true"))


@pytest.mark.slow
def test_a_fit_through_the_command_line_prints_no_warnings(tmp_path):
    """What a user sees of a recipe run: progress and results, no warnings (Lightning's eval-mode warning,
    torch's LeafSpec deprecation tripped by Lightning, ...)."""
    run = subprocess.run(
        [sys.executable, "-m", "ssl_lightning.cli", *_tiny_fit()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert "`Trainer.fit` stopped: `max_steps=2` reached." in output
    assert not re.search(r"warn|deprecat", output, re.IGNORECASE), output[-3000:]
