"""The suite runner end to end on one hares-mini task: baselines, checkpoints, the callback."""

import json

import lightning as L
import pytest

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.data import HaresMiniDataModule
from ssl_lightning.eval.callback import ProbeEvaluation
from ssl_lightning.eval.evaluate import evaluate, main, random_init_like
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.methods import SupervisedClassifier
from ssl_lightning.nn.optim import OptimizerConfig

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


def test_checkpoint_column_names():
    from ssl_lightning.eval.evaluate import checkpoint_names

    assert checkpoint_names(["runs/a/last.ckpt"]) == {"last": "runs/a/last.ckpt"}
    assert checkpoint_names(["iter1=runs/i1/last.ckpt", "iter2=runs/i2/last.ckpt"]) == {
        "iter1": "runs/i1/last.ckpt",
        "iter2": "runs/i2/last.ckpt",
    }
    assert checkpoint_names(["a/last.ckpt", "b/last.ckpt"]) == {
        "a/last.ckpt": "a/last.ckpt",
        "b/last.ckpt": "b/last.ckpt",
    }
    with pytest.raises(ValueError, match="already taken"):
        checkpoint_names(["x=a.ckpt", "x=b.ckpt"])
    with pytest.raises(ValueError, match="already taken"):
        checkpoint_names(["random-init=a.ckpt"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        checkpoint_names(["=a.ckpt"])
