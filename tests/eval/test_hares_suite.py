"""`ssl-lightning evaluate --suite hares` end to end on tiny copies of all twelve tasks' data sets, laid out
under one data root exactly as HARES_DATA names the folders (tests/layouts/*)."""

import json
import runpy
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.eval import ProbeConfig
from ssl_lightning.eval.evaluate import evaluate
from ssl_lightning.eval.hares import HARES_DATA, HARES_TASKS, TABLE_4, hares_datamodule
from ssl_lightning.eval.registry import get_suite
from ssl_lightning.eval.suite_report import NOT_CANONICAL, suite_scores

LAYOUTS = Path(__file__).parents[1] / "layouts"
LAYOUT_OF = {
    "AudioSetDataModule",
    "BirdsongDataModule",
    "TUT18DataModule",
    "ESC50DataModule",
    "FluentSpeechCommandsDataModule",
    "VoxForgeDataModule",
    "VoxCeleb1DataModule",
    "NSynthDataModule",
    "MagnaTagATuneDataModule",
}


@pytest.fixture(scope="module")
def hares_root(tmp_path_factory) -> Path:
    """Every HARES data set's tiny layout under one root, in the folder HARES_DATA expects."""
    root = tmp_path_factory.mktemp("hares")
    for name in LAYOUT_OF:
        runpy.run_path(str(LAYOUTS / f"{name}.py"))["make"](root)
    speech = runpy.run_path(str(LAYOUTS / "SpeechCommandsDataModule.py"))
    speech["write_speech_commands"](root / "speech_commands_v0.02")
    speech["write_test_set"](root / "speech_commands_test_set_v0.02")
    return root


def tiny_run(hares_root: Path, out: Path, tasks=None, protocol="cached"):
    return evaluate(
        suite="hares",
        tasks=tasks,
        baselines=["random-init"],
        encoder=ByolAEncoder(d=64, channels=8),
        probe=ProbeConfig(max_steps=30, warmup_steps=5, eval_every=10),
        out_dir=str(out),
        data_root=str(hares_root),
        batch_size=16,
        plot=False,
        progress=False,
        protocol=protocol,
    )


def test_every_task_folder_is_a_layout(hares_root):
    assert {data.folder for data in HARES_DATA.values()} <= {p.name for p in hares_root.iterdir()}
    assert set(HARES_DATA) == set(HARES_TASKS) == set(TABLE_4)


@pytest.mark.slow
def test_hares_suite_runs_every_task_and_reports(hares_root, tmp_path, capsys):
    results = tiny_run(hares_root, tmp_path / "out")
    assert [r.task for r in results] == list(HARES_TASKS)
    by_task = {r.task: r for r in results}
    for r in results:
        assert 0.0 <= r.value <= 1.0 and r.num_train > 0 and r.num_test > 0
        assert r.metric == HARES_TASKS[r.task].metric
        assert isinstance(r.extra["canonical"], bool) and r.extra["split_note"]
    esc50 = by_task["esc50"].extra["folds"]
    assert sorted(esc50) == [1, 2, 3, 4, 5]
    assert by_task["esc50"].value == pytest.approx(sum(esc50.values()) / 5)
    assert by_task["birdsong"].extra["canonical"] is False and by_task["tut18"].extra["canonical"] is False
    # Birdsong and TUT18 never run on the paper's split, so no environment average and no HARES score ...
    scores = suite_scores(results, get_suite("hares"))["random-init"]
    assert scores["environment"] is None and scores["hares"] is None
    table = (tmp_path / "out" / "suite.md").read_text()
    assert f"| **environment avg.** |  | {NOT_CANONICAL} |" in table
    assert "paper: SF NFNet-F0" in table and "| audioset | mAP |" in table and "| 37.8 |" in table
    assert "75.8" in table  # the paper's environment average of SF NFNet-F0, recomputed from Table 4
    # ... while a domain whose tasks are all canonical is averaged.
    speech = [by_task[t].value for t in HARES_TASKS if HARES_TASKS[t].domain == "speech"]
    assert all(by_task[t].extra["canonical"] for t in HARES_TASKS if HARES_TASKS[t].domain == "speech")
    assert scores["speech"] == pytest.approx(sum(speech) / len(speech))
    for task in HARES_TASKS:
        record = json.loads((tmp_path / "out" / "tasks" / f"{task}.json").read_text())
        assert record["results"][0]["value"] == pytest.approx(by_task[task].value)
    assert (tmp_path / "out" / "results.png").stat().st_size > 0
    # the splits the library made are recorded beside the report, one `<split>\t<item>` line per clip
    for task in ("birdsong", "tut18", "voxforge"):
        lines = (tmp_path / "out" / "splits" / f"{task}.tsv").read_text().splitlines()
        assert {line.split("\t")[0] for line in lines} == {"train", "valid", "test"}
    assert "suite.md" in capsys.readouterr().out


def test_audioset_is_scored_on_ten_overlapping_crops_per_clip(tmp_path):
    runpy.run_path(str(LAYOUTS / "AudioSetDataModule.py"))["make"](tmp_path)
    for path in (tmp_path / "audioset" / "audio").rglob("*"):
        if path.suffix in (".wav", ".flac"):  # the clips last 0.5 s: make them 4 s, longer than 3 s crops
            rate = soundfile.info(str(path)).samplerate
            soundfile.write(str(path), 0.1 * np.ones(4 * rate, dtype=np.float32), rate)
    dm = hares_datamodule("audioset", str(tmp_path), batch_size=64)
    dm.setup("fit")
    crops = HARES_TASKS["audioset"].eval_crops
    batches = list(dm.subclip_dataloader("test", crops=crops))
    clip_ids = torch.cat([batch["clip_id"] for batch in batches])
    assert crops == 10 and torch.bincount(clip_ids)[clip_ids.unique()].eq(10).all()
    assert dm.eval_num_samples == 3 * 16000 and dm.train_num_samples == 3 * 16000
    assert not torch.cat([batch["padding_mask"] for batch in batches]).any()  # crops inside the clip


def test_fluent_uses_slot_heads_under_the_random_crop_protocol(hares_root, tmp_path):
    (result,) = tiny_run(hares_root, tmp_path, tasks=["fluent_speech_commands"], protocol="random_crop")
    assert result.metric == "all_slots" and result.extra["protocol"] == "random_crop"
    assert 0.0 <= result.value <= 1.0


def test_missing_data_set_names_its_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nsynth_pitch.*NSynthDataModule.*nsynth.*--tasks"):
        hares_datamodule("nsynth_pitch", str(tmp_path))
    with pytest.raises(ValueError, match="--data_root"):
        hares_datamodule("nsynth_pitch", None)
