"""The suite runner end to end on one hares-mini task: baselines, checkpoints, the callback."""

import json
import os
import re
import shlex
from pathlib import Path

import lightning as L
import pytest
import torch

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.data import HaresMiniDataModule
from ssl_lightning.eval.callback import ProbeEvaluation
from ssl_lightning.eval.evaluate import (
    SuiteRunner,
    build_parser,
    checkpoint_names,
    evaluate,
    main,
    random_init_like,
)
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.eval.registry import NAMES
from ssl_lightning.eval.report import TaskResult
from ssl_lightning.methods import SupervisedClassifier
from ssl_lightning.nn.optim import OptimizerConfig

REPO = Path(__file__).resolve().parents[2]
FAST_PROBE = ProbeConfig(max_steps=60, warmup_steps=10, eval_every=20)


def _tiny_encoder() -> ByolAEncoder:
    return ByolAEncoder(d=16, channels=4)


@pytest.mark.slow
def test_evaluate_baselines_and_checkpoint_write_a_table(tmp_path, capsys):
    L.seed_everything(0)
    model = SupervisedClassifier(_tiny_encoder(), optim=OptimizerConfig(lr=1e-3))
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, datamodule=HaresMiniDataModule(task="env_events", batch_size=16))
    ckpt = tmp_path / "mine.ckpt"
    trainer.save_checkpoint(ckpt)

    results = evaluate(
        ckpt=[str(ckpt)],
        tasks=["env_events"],
        probe=FAST_PROBE,
        supervised_steps=3,
        out_dir=str(tmp_path / "report"),
        plot=False,
        progress=False,
    )
    assert [r.model for r in results] == ["random-init", "supervised", "mine"]
    assert all(0.0 <= r.value <= 1.0 and r.num_test == 200 for r in results)
    table = capsys.readouterr().out
    assert "env_events" in table and "random-init" in table and "mine" in table
    saved = json.loads((tmp_path / "report" / "results.json").read_text())
    assert len(saved["results"] if isinstance(saved, dict) else saved) == 3
    assert (tmp_path / "report" / "results.png").stat().st_size > 0


def test_evaluate_rejects_unknown_baseline_task_and_suite(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown baselines"):
        evaluate(baselines=["imagenet"], out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="no task"):
        evaluate(baselines=["random-init"], tasks=["birdsong"], out_dir=str(tmp_path))
    with pytest.raises(SystemExit) as exit_info:
        main(["--suite", "nope", "--out_dir", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err


def test_random_init_like_reinitialises_a_copy():
    encoder = _tiny_encoder()
    fresh = random_init_like(encoder, seed=1)
    assert fresh is not encoder
    weight = "cnn.features.0.weight"
    assert not fresh.state_dict()[weight].equal(encoder.state_dict()[weight])
    assert random_init_like(encoder, seed=1).state_dict()[weight].equal(fresh.state_dict()[weight])


@pytest.mark.slow
def test_probe_callback_logs_and_writes_a_report(tmp_path):
    L.seed_everything(0)
    model = SupervisedClassifier(_tiny_encoder())
    trainer = L.Trainer(
        max_steps=2,
        default_root_dir=tmp_path,
        logger=L.pytorch.loggers.CSVLogger(tmp_path),
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[ProbeEvaluation(tasks=["env_events"], probe=FAST_PROBE)],
    )
    trainer.fit(model, datamodule=HaresMiniDataModule(task="env_events", batch_size=16))
    metrics = (tmp_path / "lightning_logs" / "version_0" / "metrics.csv").read_text()
    assert "probe/env_events" in metrics
    assert (tmp_path / "lightning_logs" / "version_0" / "probe" / "final" / "results.md").is_file()
    with pytest.raises(ValueError, match="no task"):
        ProbeEvaluation(tasks=["birdsong"])


def test_checkpoint_column_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in ("a/last.ckpt", "b/last.ckpt", "runs/epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).touch()
    assert checkpoint_names(["a/last.ckpt"]) == {"last": "a/last.ckpt"}
    assert checkpoint_names(["iter1=a/last.ckpt", "iter2=b/last.ckpt"]) == {
        "iter1": "a/last.ckpt",
        "iter2": "b/last.ckpt",
    }
    assert checkpoint_names(["a/last.ckpt", "b/last.ckpt"]) == {
        "a/last.ckpt": "a/last.ckpt",
        "b/last.ckpt": "b/last.ckpt",
    }
    # Lightning's file names hold '=': an existing file, or a '/' before the first '=', is a path
    assert checkpoint_names(["epoch=1-step=4.ckpt"]) == {"epoch=1-step=4": "epoch=1-step=4.ckpt"}
    assert checkpoint_names(["runs/epoch=0-step=2.ckpt"]) == {"epoch=0-step=2": "runs/epoch=0-step=2.ckpt"}
    assert checkpoint_names(["runs/epoch=9.ckpt"]) == {"epoch=9": "runs/epoch=9.ckpt"}  # load_method: missing
    assert checkpoint_names(["e=epoch=1-step=4.ckpt", "runs/epoch=0-step=2.ckpt"]) == {
        "e": "epoch=1-step=4.ckpt",
        "runs/epoch=0-step=2.ckpt": "runs/epoch=0-step=2.ckpt",
    }
    with pytest.raises(FileNotFoundError, match=r"'epoch=0-step=9.ckpt'.*NAME=PATH.*'0-step=9.ckpt'"):
        checkpoint_names(["epoch=0-step=9.ckpt"])
    with pytest.raises(ValueError, match="already taken"):
        checkpoint_names(["x=a/last.ckpt", "x=b/last.ckpt"])
    with pytest.raises(ValueError, match="already taken"):
        checkpoint_names(["random-init=a/last.ckpt"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        checkpoint_names(["=a.ckpt"])


def _documented_evaluate_commands() -> list[str]:
    """The arguments of every `ssl-lightning evaluate ...` command in README.md, the recipe headers and
    the CLI docstrings, as written (with README's "add `--ckpt NAME=path/to/last.ckpt`" appended)."""
    texts = [REPO / "README.md", *sorted((REPO / "recipes").rglob("*.yaml"))]
    texts += [REPO / "ssl_lightning" / name for name in ("cli.py", "eval/evaluate.py")]
    text = "\n".join(path.read_text() for path in texts)
    text = re.sub(r"\\\n#?\s*", " ", text)  # a command continued on the next (comment) line
    commands = re.findall(r"ssl-lightning evaluate( [^\s`#\"][^`\n#\"]*)", text)
    added = re.findall(r"add\s+`(--ckpt [^`]+)`", text)
    return [args.strip() for args in commands if args.strip() != "..."] + [
        f"--suite hares-mini {args}" for args in added
    ]


def test_documented_evaluate_commands_parse(tmp_path, monkeypatch):
    commands = _documented_evaluate_commands()
    assert "--suite hares-mini --ckpt runs/version_0/checkpoints/last.ckpt" in commands
    assert "--suite hares-mini --ckpt NAME=path/to/last.ckpt" in commands
    parser = build_parser()
    monkeypatch.chdir(REPO)  # commands name recipe files relative to the repository
    for command in commands:
        if command != "--help":
            assert parser.parse_args(shlex.split(command)).suite in NAMES, command
    cfg = parser.parse_args(shlex.split("--suite hares-mini --ckpt runs/version_0/checkpoints/last.ckpt"))
    assert cfg.ckpt == ["runs/version_0/checkpoints/last.ckpt"]
    monkeypatch.chdir(tmp_path)
    Path("path/to").mkdir(parents=True)
    Path("path/to/last.ckpt").touch()
    cfg = parser.parse_args(shlex.split("--suite hares-mini --ckpt NAME=path/to/last.ckpt"))
    assert checkpoint_names(cfg.ckpt) == {"NAME": "path/to/last.ckpt"}


def test_cli_list_arguments_take_several_values_and_repeat(tmp_path):
    (tmp_path / "c.yaml").write_text("ckpt: [a.ckpt]\nbaselines: []\n")
    parse = build_parser().parse_args
    cfg = parse(["--ckpt", "x=a.ckpt", "b.ckpt", "--tasks", "env_events", "env_scenes", "--ckpt", "c.ckpt"])
    assert cfg.ckpt == ["x=a.ckpt", "b.ckpt", "c.ckpt"] and cfg.tasks == ["env_events", "env_scenes"]
    cfg = parse(["--ckpt+", "epoch=0-step=2.ckpt", "--tasks", "env_events", "--baselines", "--plot", "false"])
    assert cfg.ckpt == ["epoch=0-step=2.ckpt"] and cfg.tasks == ["env_events"] and cfg.baselines == []
    assert not cfg.plot and parse([]).baselines is None
    cfg = parse(["--config", str(tmp_path / "c.yaml"), "--ckpt", "b.ckpt"])
    assert cfg.ckpt == ["a.ckpt", "b.ckpt"] and cfg.baselines == []


def _save_corrupt(path: Path, kind: str) -> Path:
    if kind == "truncated":  # an interrupted save: the first half of a real checkpoint
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_text("" if kind == "empty" else "not a checkpoint\n")
    return path


@pytest.mark.parametrize("kind", ["truncated", "empty", "text"])
def test_evaluate_cli_names_a_corrupt_checkpoint(tmp_path, capsys, kind):
    ckpt = _save_corrupt(tmp_path / f"{kind}=1.ckpt", kind)
    with pytest.raises(SystemExit) as exit_info:
        main(["--ckpt", str(ckpt), "--baselines", "--tasks", "env_events", "--out_dir", str(tmp_path / "r")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"checkpoint {str(ckpt)!r}" in err and "cannot be read" in err and "Traceback" not in err


def _canned_probe(runner, name, method, embeddings=None):
    """A stand-in for the probes: one result at once, and the report folder replaced by a file meanwhile
    (a write that fails only after the work, like a disk that fills or a folder that goes read-only)."""
    out = Path(os.environ["REPORT_DIR"])
    out.rmdir()
    out.write_text("in the way")
    return [TaskResult("hares-mini", "env_events", name, "accuracy", 0.625, 400, 200, 1.0)]


def test_evaluate_prints_the_table_before_a_report_write_fails(tmp_path, capsys, monkeypatch):
    out = tmp_path / "report"
    monkeypatch.setenv("REPORT_DIR", str(out))
    monkeypatch.setattr(SuiteRunner, "probe_model", _canned_probe)
    with pytest.raises(SystemExit) as exit_info:
        main(["--baselines", "random-init", "--tasks", "env_events", "--out_dir", str(out)])
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    assert "| env_events | accuracy | 62.5 |" in captured.out
    assert f"writing its report to {str(out)!r} failed" in captured.err
    assert "table printed above is the result" in captured.err and "Traceback" not in captured.err


def test_evaluate_checks_the_report_folder_before_the_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("a regular file")
    monkeypatch.setattr(SuiteRunner, "probe_model", lambda *args: pytest.fail("probed before the check"))
    with pytest.raises(SystemExit) as exit_info:
        main(["--baselines", "random-init", "--out_dir", str(tmp_path / "file" / "report")])
    assert exit_info.value.code != 0
    assert (
        f"--out_dir {str(tmp_path / 'file' / 'report')!r} is not a writable folder" in capsys.readouterr().err
    )
