"""The `dabs` and `dabs-mini` suites: tasks, metrics and batch sizes, the published numbers, the suite score
as the mean over domains, clear errors for tasks without data, and dabs-mini's probes."""

import json
from pathlib import Path

import lightning as L
import pytest
from lightning.pytorch.loggers import CSVLogger

from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.eval.callback import ProbeEvaluation
from ssl_lightning.eval.dabs import DABS_TASKS, PAPER_SCORES, dabs_datamodule, dabs_mini_datamodule
from ssl_lightning.eval.evaluate import SuiteRunner, evaluate
from ssl_lightning.eval.probe import DABS_PROBE
from ssl_lightning.eval.registry import NAMES, get_suite
from ssl_lightning.eval.report import TaskResult
from ssl_lightning.eval.suite_report import domains, format_suite_table, paper_score, suite_scores
from ssl_lightning.eval.suites import Suite, SuiteTask
from ssl_lightning.methods.dabs import EMix


def result(task: str, value: float, canonical: bool = True, suite: str = "s") -> TaskResult:
    return TaskResult(suite, task, "ours", "accuracy", value, 10, 10, 0.0, {"canonical": canonical})


def test_registry_holds_both_suites_with_the_dabs_protocol():
    assert {"dabs", "dabs-mini"} <= set(NAMES)
    dabs, mini = get_suite("dabs"), get_suite("dabs-mini")
    assert dabs.probe is DABS_PROBE and mini.probe is DABS_PROBE
    assert dabs.score_over == mini.score_over == "domains"
    assert domains(dabs) == ["natural images", "text", "speech", "sensors", "chest x-rays", "images & text"]
    per_domain = {d: sum(t.domain == d for t in dabs.tasks.values()) for d in domains(dabs)}
    assert per_domain == {
        "natural images": 6,
        "text": 10,
        "speech": 7,
        "sensors": 1,
        "chest x-rays": 2,
        "images & text": 2,
    }
    metrics = {name: task.metric for name, task in dabs.tasks.items() if task.metric != "accuracy"}
    assert metrics == {"cola": "pearson", "stsb": "spearman", "chexpert": "auroc", "xray8": "auroc"}
    sizes = {name: dabs.tasks[name].probe_batch_size for name in ("cifar10", "sst2", "voxceleb1", "pamap2")}
    assert sizes == {"cifar10": 64, "sst2": 128, "voxceleb1": 64, "pamap2": 256}
    assert list(mini.tasks) == ["digits", "synthetic_sensors", "speech_keywords", "mismatched_caption_digits"]


def test_published_numbers():
    assert DABS_TASKS["cifar10"].paper == {"random init": 24.20, "e-Mix": 39.43, "ShED": 39.63}
    assert DABS_TASKS["voxceleb1"].paper["ShED"] == 2.81 and DABS_TASKS["chexpert"].paper["e-Mix"] == 72.40
    assert DABS_TASKS["mismatched_caption"].paper["random init"] == 49.41 and DABS_TASKS["cola"].paper == {}
    dabs = get_suite("dabs")
    assert paper_score(dabs, "speech", "RQ") == 44.5 and paper_score(dabs, "images & text", "e-Mix") == 48.9
    assert paper_score(dabs, "dabs", "RQ") == 55.6 and paper_score(dabs, "natural images", "ShED") == 20.9
    # ShED has no published average: the mean over its six domain scores
    assert paper_score(dabs, "dabs", "ShED") == pytest.approx((20.9 + 48.4 + 36.5 + 88.7 + 74.5 + 54.3) / 6)
    # Table 10's "Average" is the mean of its domain columns (checks the transcription)
    for model in ("random init", "e-Mix", "RQ"):
        column = [PAPER_SCORES[d][model] for d in domains(dabs)]
        assert sum(column) / 6 == pytest.approx(PAPER_SCORES["dabs"][model], abs=0.1)
    # the README's speech rows average to the paper's speech score
    speech = [t.paper["random init"] for t in dabs.tasks.values() if t.domain == "speech"]
    assert sum(speech) / len(speech) == pytest.approx(PAPER_SCORES["speech"]["random init"], abs=0.05)


def test_suite_score_is_the_mean_over_domains():
    tasks = {"a1": SuiteTask("a1", "A", "accuracy"), "a2": SuiteTask("a2", "A", "accuracy")}
    tasks["b"] = SuiteTask("b", "B", "accuracy")
    results = [result("a1", 0.2), result("a2", 0.4), result("b", 0.9)]
    by_domains = Suite("s", tasks, dabs_datamodule, score_over="domains")
    scores = suite_scores(results, by_domains)["ours"]
    assert scores["A"] == pytest.approx(0.3) and scores["s"] == pytest.approx((0.3 + 0.9) / 2)
    assert suite_scores(results, Suite("s", tasks, dabs_datamodule))["ours"]["s"] == pytest.approx(0.5)
    # off the canonical data: no score, unless the suite never compares with a paper
    off = [result("a1", 0.2, canonical=False), *results[1:]]
    assert suite_scores(off, by_domains)["ours"]["s"] is None
    anyway = Suite("s", tasks, dabs_datamodule, score_over="domains", canonical_only=False)
    assert suite_scores(off, anyway)["ours"]["s"] == pytest.approx(0.6)


def test_report_shows_published_domain_and_suite_scores():
    table = format_suite_table(
        [result("pamap2", 0.75, suite="dabs")], get_suite("dabs"), ["random init", "RQ"]
    )
    assert "| pamap2 | accuracy | 75.0 | 69.8 | – |" in table
    assert "| **sensors avg.** |  | 75.0 | 69.8 | 84.9 |" in table
    assert "| **dabs** |  | n/c | 45.5 | 55.6 |" in table


def test_tasks_without_data_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="chexpert.*CheXpertDataModule.*CheXpert-v1.0-small"):
        dabs_datamodule("chexpert", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cu_birds.*DabsImageFolderDataModule.*cu_birds"):
        dabs_datamodule("cu_birds", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="stsb.*GlueDataModule.*glue"):
        dabs_datamodule("stsb", str(tmp_path))
    with pytest.raises(ValueError, match="--data_root"):
        dabs_datamodule("cifar10", None)
    with pytest.raises(FileNotFoundError, match="DabsCIFAR10DataModule.*cifar-10-batches-py"):
        dabs_datamodule("cifar10", str(tmp_path))
    with pytest.raises(
        FileNotFoundError, match="fluent_action.*DabsSpeechDataModule.*fluent_speech_commands"
    ):
        dabs_datamodule("fluent_action", str(tmp_path))


def test_dabs_mini_probes_digits_and_sensors_with_the_dabs_protocol():
    suite = get_suite("dabs-mini")
    for task in ("digits", "synthetic_sensors"):
        dm = dabs_mini_datamodule(task, batch_size=256)
        dm.setup("fit")
        encoder = DabsTransformer(dm.input_specs, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32, out_dim=8)
        runner = SuiteRunner(suite, [task], batch_size=256, device="cpu", progress=False)
        assert runner.probe is DABS_PROBE
        (r,) = runner.probe_model("tiny", EMix(encoder))
        assert r.task == task and r.metric == "accuracy" and 0.0 <= r.value <= 1.0
        assert r.extra["canonical"] is False and r.num_test > 0
    table = format_suite_table([result("digits", 0.5, False, "dabs-mini")], suite)
    assert "†" not in table and "| **natural images avg.** |  | 50.0 |" in table


def test_evaluate_dabs_mini_runs_the_random_init_baseline_of_a_dabs_encoder(tmp_path):
    specs = dabs_mini_datamodule("digits").input_specs
    encoder = DabsTransformer(specs, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32, out_dim=8)
    (result,) = evaluate(
        suite="dabs-mini",
        tasks=["digits"],
        baselines=["random-init"],
        encoder=encoder,
        out_dir=str(tmp_path),
        plot=False,
        progress=False,
    )
    assert result.model == "random-init" and result.metric == "accuracy" and 0.0 <= result.value <= 1.0
    assert result.num_test == 270  # DabsDigitsDataModule's test split: the library's digits test split
    assert "| **natural images avg.** |" in (tmp_path / "suite.md").read_text()


def test_the_probe_callback_runs_dabs_linear_evaluation_after_a_fit(tmp_path):
    dm = dabs_mini_datamodule("digits", batch_size=64)
    encoder = DabsTransformer(dm.input_specs, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32, out_dim=8)
    callback = ProbeEvaluation(suite="dabs-mini", tasks=["digits"])
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(EMix(encoder), datamodule=dm)
    report = json.loads((Path(trainer.log_dir) / "probe" / "final" / "results.json").read_text())
    (row,) = report["results"]
    assert row["task"] == "digits" and row["extra"]["protocol"] == "cached" and 0.0 <= row["value"] <= 1.0
    logged = (Path(trainer.log_dir) / "metrics.csv").read_text()
    assert "probe/digits" in logged
