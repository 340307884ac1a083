"""Multi-stage runs (`orchestration/stages.py`): which stages are skipped, resumed (from which
checkpoint) or run, with the fit itself replaced by a stand-in that records its arguments."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ssl_lightning.orchestration import stages
from ssl_lightning.orchestration.stages import Stage, last_checkpoint, run_stages


@pytest.fixture
def fits(monkeypatch) -> list[list[str]]:
    """Stand-in for the LightningCLI fit: records its args and writes a readable last.ckpt."""
    calls: list[list[str]] = []

    def fake_fit(args):
        calls.append(list(args))
        out = Path(args[args.index("--checkpoint.dirpath") + 1])
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": {}}, out / "last.ckpt")

    monkeypatch.setattr(stages, "run_lightning_cli", fake_fit)
    return calls


@pytest.fixture
def plan(tmp_path: Path) -> list[Stage]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("trainer: {}\n")
    first = Stage("first", recipe)
    second = Stage(
        "second",
        recipe,
        input_checkpoint=last_checkpoint(tmp_path / "run", "first"),
        input_args=("--model.init_args.teacher_checkpoint", "X"),
        missing_input_hint="run stage first",
    )
    return [first, second]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def test_stages_run_in_order_then_are_skipped(tmp_path, plan, fits):
    run = tmp_path / "run"
    assert [(r.stage, r.action) for r in run_stages(run, plan)] == [("first", "ran"), ("second", "ran")]
    assert "--ckpt_path" not in fits[0] and fits[1][-2:] == ["--model.init_args.teacher_checkpoint", "X"]
    assert (run / "second" / "DONE").read_text() == "second ran\n"
    assert [r.action for r in run_stages(run, plan)] == ["skipped", "skipped"]
    assert len(fits) == 2


def test_done_with_a_truncated_last_ckpt_resumes_from_the_newest_readable_one(tmp_path, plan, fits, capsys):
    run = tmp_path / "run"
    run_stages(run, plan[:1])
    intact = last_checkpoint(run, "first").with_name("epoch=0-step=10.ckpt")
    torch.save({"state_dict": {}}, intact)
    _truncate(last_checkpoint(run, "first"))
    results = run_stages(run, plan[:1])
    assert [(r.stage, r.action) for r in results] == [("first", "resumed")]
    assert fits[-1][fits[-1].index("--ckpt_path") + 1] == str(intact)
    assert "cannot be read" in capsys.readouterr().out


def test_a_stage_whose_checkpoints_are_all_unreadable_names_them(tmp_path, plan, fits):
    run = tmp_path / "run"
    run_stages(run, plan[:1])
    (run / "first" / "DONE").unlink()
    _truncate(last_checkpoint(run, "first"))
    with pytest.raises(RuntimeError, match=r"none of its checkpoints can be read \(.*last\.ckpt\)"):
        run_stages(run, plan[:1])


def test_missing_input_and_missing_files_fail_before_any_fit(tmp_path, plan, fits):
    with pytest.raises(FileNotFoundError, match="which does not exist; run stage first"):
        run_stages(tmp_path / "run", plan[1:])
    missing = Stage("third", tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match="recipe .*nope.yaml.* of stage third does not exist"):
        run_stages(tmp_path / "run", [*plan, missing])
    assert fits == []
