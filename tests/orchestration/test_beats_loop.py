"""`ssl-lightning beats-loop` runs iter1 -> tokenizer_iter2 -> iter2 on CPU with tiny models, skips
finished stages on a restart, and names the stage to run first when an input checkpoint is missing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssl_lightning.methods import load_method
from ssl_lightning.orchestration.beats_loop import main
from ssl_lightning.orchestration.stages import last_checkpoint

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = RECIPES / "overlays" / "tiny"


def _loop_args(small_data: Path, until: str = "iter2") -> list[str]:
    """CPU smoke + tiny overlays per stage; iter2 keeps the recipe's tokenizer_checkpoint (no MAM overlay)."""
    return [
        "--run-dir", "runs/beats",
        "--until", until,
        "--recipes-dir", str(RECIPES),
        "--config", str(RECIPES / "overlays" / "cpu_smoke.yaml"),
        "--config", str(small_data),
        "--stage-config", f"iter*={TINY / 'BEATsEncoder.yaml'}",
        "--stage-config", f"iter1={TINY / 'MaskedAudioModeling.yaml'}",
        "--stage-config", f"tokenizer_*={TINY / 'SelfDistilledTokenizerTraining.yaml'}",
    ]  # fmt: skip


@pytest.fixture
def small_data(tmp_path: Path) -> Path:
    """An overlay with 4-clip batches and no worker processes, to keep the three fits fast."""
    path = tmp_path / "small_data.yaml"
    path.write_text("data:\n  init_args:\n    batch_size: 4\n    num_workers: 0\n")
    return path


@pytest.mark.slow
def test_loop_runs_stages_in_order_and_skips_finished_ones(tmp_path, monkeypatch, small_data, capsys):
    monkeypatch.chdir(tmp_path)
    results = main(_loop_args(small_data))
    assert [(r.stage, r.action) for r in results] == [
        ("iter1", "ran"),
        ("tokenizer_iter2", "ran"),
        ("iter2", "ran"),
    ]
    run_dir = Path("runs/beats")
    for stage in ("iter1", "tokenizer_iter2", "iter2"):
        assert last_checkpoint(run_dir, stage).is_file()
        assert (run_dir / stage / "DONE").is_file()
        assert sorted((run_dir / stage).glob("csv/**/metrics.csv")), f"{stage}: no CSV log in its stage dir"
    assert not Path("runs/csv").exists(), "a stage logged outside the run directory"

    trained = load_method(last_checkpoint(run_dir, "tokenizer_iter2")).tokenizer.state_dict()
    used = load_method(last_checkpoint(run_dir, "iter2")).tokenizer.state_dict()
    assert trained.keys() == used.keys()
    assert all(torch.equal(trained[key], used[key]) for key in trained)

    again = main(_loop_args(small_data))
    assert [r.action for r in again] == ["skipped"] * 3
    assert "iter2 skipped" in capsys.readouterr().out

    # iteration 3+: iter2 fine-tuned on labels (from iter2's encoder), then distilled into a tokenizer
    results = main([*_loop_args(small_data, until="tokenizer_iter3plus"), "--from", "iter2_finetuned"])
    assert [(r.stage, r.action) for r in results] == [
        ("iter2_finetuned", "ran"),
        ("tokenizer_iter3plus", "ran"),
    ]
    finetuned = load_method(last_checkpoint(run_dir, "iter2_finetuned"))
    assert type(finetuned).__name__ == "SupervisedClassifier" and finetuned.head is not None
    assert finetuned.hparams.pretrained_checkpoint == str(last_checkpoint(run_dir, "iter2"))
    tokenizer = load_method(last_checkpoint(run_dir, "tokenizer_iter3plus"))
    assert tokenizer.hparams.teacher_checkpoint == str(last_checkpoint(run_dir, "iter2_finetuned"))
    assert tokenizer.hparams.target_dim == finetuned.hparams.num_classes  # the teacher's logits


@pytest.mark.slow
def test_loop_resumes_a_stage_without_done_marker(tmp_path, monkeypatch, small_data):
    monkeypatch.chdir(tmp_path)
    main(_loop_args(small_data, until="iter1"))
    (Path("runs/beats/iter1") / "DONE").unlink()
    results = main(_loop_args(small_data, until="iter1"))
    assert [(r.stage, r.action) for r in results] == [("iter1", "resumed")]
    assert (Path("runs/beats/iter1") / "DONE").is_file()


def test_missing_input_checkpoint_names_the_stage_to_run_first(tmp_path, monkeypatch, small_data):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="run stage tokenizer_iter2 first"):
        main([*_loop_args(small_data), "--from", "iter2"])
    assert not Path("runs/beats/iter2").exists()


def test_iter3plus_tokenizer_reads_the_finetuned_stage_or_the_given_teacher(
    tmp_path, monkeypatch, small_data
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="run stage iter2_finetuned first"):
        main([*_loop_args(small_data, until="iter3plus"), "--from", "tokenizer_iter3plus"])
    with pytest.raises(FileNotFoundError, match="run stage iter2 first"):
        main([*_loop_args(small_data, until="iter3plus"), "--from", "iter2_finetuned"])
    with pytest.raises(
        FileNotFoundError,
        match="missing.pt, which does not exist; pass an existing file as --finetuned-teacher",
    ):
        main(
            [
                *_loop_args(small_data, until="iter3plus"),
                "--from",
                "tokenizer_iter3plus",
                "--finetuned-teacher",
                "missing.pt",
            ]
        )
    with pytest.raises(ValueError, match="read by stage tokenizer_iter3plus only"):
        main([*_loop_args(small_data, until="iter2"), "--finetuned-teacher", "missing.pt"])


def test_stage_config_pattern_must_match_a_stage(tmp_path, monkeypatch, small_data):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="matches none of the stages"):
        main([*_loop_args(small_data), "--stage-config", f"iter9={small_data}"])
