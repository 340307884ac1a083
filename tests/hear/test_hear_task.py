"""Tests for HearTaskDataModule on tiny hear-preprocess task folders (tests/layouts/HearTaskDataModule.py)."""

import json
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssl_lightning.data.audio.hear_task import HearTaskDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[1] / "layouts" / "HearTaskDataModule.py"))
)
"""The layout writer: `make(root)`, `write_multilabel_task`, `write_event_task` and their constants."""


@pytest.fixture(scope="module")
def kfold(tmp_path_factory) -> Path:
    """The ESC-50-like 5-fold task, shared read-only."""
    return Path(layout.make(tmp_path_factory.mktemp("hear"))["root"])


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory) -> Path:
    """The FSD50K-like train/valid/test multilabel task, shared read-only."""
    return layout.write_multilabel_task(tmp_path_factory.mktemp("hear") / "tasks")


@pytest.fixture
def fresh(tmp_path) -> Path:
    """A k-fold task of its own, for tests that damage it."""
    return layout.write_kfold_task(tmp_path / "tasks")


def ready(root: Path, **kwargs) -> HearTaskDataModule:
    datamodule = HearTaskDataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def names(datamodule: HearTaskDataModule, split: str) -> list[Path]:
    dataset = datamodule.dataset(split, "random_crop")
    return [Path(dataset.paths[i]) for i in range(len(dataset))]


def test_metadata_vocabulary_and_label_types(kfold, multilabel):
    datamodule = HearTaskDataModule(str(kfold))
    assert datamodule.classes == layout.KFOLD_CLASSES and datamodule.label_type == "single"
    assert datamodule.canonical is True and datamodule.task_name == "esc50-v2.0.0"
    other = HearTaskDataModule(str(multilabel))
    # the quoted CSV label with a comma is one label, in idx (sorted) order
    assert (
        other.classes == ("Bark", "Bicycle_bell", "Walk, footsteps", "Wind") and other.label_type == "multi"
    )
    assert other.split_note.startswith("HEAR fsd50k-v1.0 (trainvaltest): train train, valid valid, test test")


@pytest.mark.parametrize(
    ("fold", "test", "valid"), [(0, "fold00", "fold01"), (2, "fold02", "fold03"), (4, "fold04", "fold00")]
)
def test_the_test_fold_and_the_next_as_valid(kfold, fold, test, valid):
    datamodule = ready(kfold, fold=fold)
    folders = {
        split: {path.parent.name for path in names(datamodule, split)} for split in ("train", "valid", "test")
    }
    assert folders["test"] == {test} and folders["valid"] == {valid}
    assert folders["train"] == {f"fold{k:02d}" for k in range(5)} - {test, valid}
    assert [len(names(datamodule, s)) for s in ("train", "valid", "test")] == [30, 10, 10]
    files = [set(names(datamodule, s)) for s in ("train", "valid", "test")]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert f"valid {valid}, test {test} (<split>.json in {kfold})" in datamodule.split_note


def test_audio_comes_from_the_sample_rate_folder_or_the_highest_rate(kfold):
    assert {p.parts[-3] for p in names(ready(kfold), "test")} == {"16000"}
    assert {p.parts[-3] for p in names(ready(kfold, sample_rate=22050), "test")} == {"48000"}


def test_single_labels_and_training_crops(kfold):
    datamodule = ready(kfold, batch_size=4, train_seconds=0.25)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 4000) and batch["audio"].dtype == torch.float32
    paths = names(datamodule, "train")
    # the class is the last part of `{fold}-{source}-A-{class}.wav`
    assert batch["label"].tolist() == [int(paths[int(i)].stem.split("-")[-1]) for i in batch["clip_id"]]


def test_multi_hot_labels_and_subclips_per_clip(multilabel):
    datamodule = ready(multilabel, batch_size=3, clip_seconds=0.5)
    assert datamodule.clip_seconds == 0.5
    clip_ids = torch.cat([b["clip_id"] for b in datamodule.subclip_dataloader("train")])
    lengths = [seconds for _, seconds in layout.MULTILABEL_SPLITS["train"].values()]
    expected = [math.ceil(round(seconds * 16000) / 8000) for seconds in lengths]
    assert torch.bincount(clip_ids).tolist() == expected == [1, 3, 2, 2, 1, 3]
    test = next(iter(datamodule.subclip_dataloader("test", batch_size=4)))
    # 3001.wav: Walk, footsteps (idx 2); 3002.wav: Bark + Bicycle_bell (idx 0, 1); 1 sub-clip each
    assert test["label"].tolist() == [[0, 0, 1, 0], [0, 0, 1, 0], [0, 0, 1, 0], [1, 1, 0, 0]]
    assert test["clip_id"].tolist() == [0, 0, 0, 1]


def test_clip_seconds_default_to_the_sample_duration_or_ten_seconds(kfold, multilabel):
    assert HearTaskDataModule(str(kfold)).clip_seconds == 0.5
    assert HearTaskDataModule(str(multilabel)).clip_seconds == 10.0
    test = torch.cat([b["clip_id"] for b in ready(kfold).test_dataloader()])
    assert test.tolist() == list(range(10))  # one sub-clip per 0.5 s clip: the whole clip


def test_missing_folder_metadata_and_event_tasks_say_what_to_do(tmp_path, fresh):
    with pytest.raises(FileNotFoundError, match="HEAR task folder not found.*hear-preprocess"):
        HearTaskDataModule(str(tmp_path / "nowhere"))
    event = layout.write_event_task(tmp_path / "tasks")
    with pytest.raises(NotImplementedError, match="dcase2016_task2.*event.*scene tasks only"):
        HearTaskDataModule(str(event))
    (fresh / "task_metadata.json").unlink()
    with pytest.raises(FileNotFoundError, match="task_metadata.json.*tasks/<task>-<version>-<mode>/"):
        HearTaskDataModule(str(fresh))


def test_bad_metadata_vocabulary_and_labels_name_the_file(fresh):
    metadata = json.loads((fresh / "task_metadata.json").read_text())
    (fresh / "task_metadata.json").write_text(json.dumps({**metadata, "split_mode": "random"}))
    with pytest.raises(ValueError, match="split_mode must be one of"):
        HearTaskDataModule(str(fresh))
    (fresh / "task_metadata.json").write_text(json.dumps(metadata))
    vocabulary = fresh / "labelvocabulary.csv"
    text = vocabulary.read_text()
    vocabulary.write_text(text.replace("4,category_4", "7,category_4"))
    with pytest.raises(ValueError, match=r"labelvocabulary.csv: idx must be 0..C-1.*7\]"):
        ready(fresh)
    vocabulary.write_text(text.replace("4,category_4", "4,category_0"))
    with pytest.raises(ValueError, match="a label appears twice"):
        ready(fresh)
    vocabulary.write_text(text)
    labels = json.loads((fresh / "fold02.json").read_text())
    (fresh / "fold02.json").write_text(json.dumps({**labels, "3-9-A-0.wav": ["dog"]}))
    with pytest.raises(ValueError, match=r"fold02.json: '3-9-A-0.wav' has label\(s\) \['dog'\]"):
        ready(fresh)


def test_missing_audio_is_counted_then_raised_or_skipped(fresh):
    removed = sorted((fresh / "16000" / "fold00").glob("*.wav"))[:3]
    for path in removed:
        path.unlink()
    with pytest.raises(
        FileNotFoundError, match=f"3 of 10 clips of esc50-v2.0.0 test.*fold00/{removed[0].name}"
    ):
        ready(fresh)
    with pytest.warns(UserWarning, match="3 of 10 clips"):
        datamodule = ready(fresh, on_error="skip")
    assert len(names(datamodule, "test")) == 7


def test_bad_arguments_raise_early(kfold, multilabel):
    with pytest.raises(ValueError, match="fold must be one of 0..4"):
        HearTaskDataModule(str(kfold), fold=5)
    with pytest.raises(ValueError, match=r"fold must be one of 0..0 for fsd50k-v1.0 \(trainvaltest\)"):
        HearTaskDataModule(str(multilabel), fold=1)
    with pytest.raises(ValueError, match="no Hugging Face copy"):
        HearTaskDataModule(str(kfold), hub="some/copy")
    with pytest.raises(ValueError, match="train_seconds"):
        HearTaskDataModule(str(kfold), train_seconds=0)
