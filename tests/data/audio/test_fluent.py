"""Tests for FluentSpeechCommandsDataModule on a tiny copy of its layout
(tests/layouts/FluentSpeechCommandsDataModule.py)."""

import csv
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.data.audio.fluent import FluentSpeechCommandsDataModule

LAYOUTS = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "FluentSpeechCommandsDataModule.py")))
hub = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "hub.py")))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 28 / 4 / 4 utterances."""
    return Path(layout.make(tmp_path_factory.mktemp("fluent"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_fluent(tmp_path / "fluent_speech_commands_dataset")


def ready(root: Path, **kwargs) -> FluentSpeechCommandsDataModule:
    datamodule = FluentSpeechCommandsDataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def csv_rows(root: Path, split: str) -> list[dict]:
    with open(root / "data" / f"{split}_data.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_classes_are_the_slot_values_grouped_by_slot(root):
    datamodule = FluentSpeechCommandsDataModule(str(root))
    assert datamodule.slot_sizes == (6, 14, 4) and datamodule.num_classes == 24
    assert datamodule.label_type == "multi" and datamodule.canonical
    assert datamodule.classes[:6] == tuple(f"action={a}" for a in sorted(layout.ACTIONS))
    assert datamodule.classes[6] == "object=Chinese"  # upper case sorts first
    assert datamodule.classes[-4:] == (
        "location=bedroom",
        "location=kitchen",
        "location=none",
        "location=washroom",
    )
    assert "data/{train,valid,test}_data.csv" in datamodule.split_note


def test_splits_follow_the_csvs_and_keep_speakers_apart(root):
    datamodule = ready(root)
    speakers = {}
    for split, size in (("train", 28), ("valid", 4), ("test", 4)):
        dataset = datamodule.dataset(split, "random_crop")
        assert len(dataset) == size
        rows = csv_rows(root, split)
        assert [dataset.paths[i] for i in range(size)] == [root / row["path"] for row in rows]
        speakers[split] = {dataset.paths[i].parent.name for i in range(size)}
    assert speakers["train"].isdisjoint(speakers["valid"] | speakers["test"])
    assert speakers["valid"].isdisjoint(speakers["test"])


def test_a_label_holds_three_slots(root):
    """Row 4 of train_data.csv is (decrease, heat, none): three ones, one in each slot's group."""
    datamodule = ready(root)
    label = datamodule.dataset("train", "random_crop")[4]["label"]
    row = csv_rows(root, "train")[4]
    classes = datamodule.classes
    expected = {classes.index(f"{slot}={row[slot]}") for slot in ("action", "object", "location")}
    assert (row["action"], row["object"], row["location"]) == ("decrease", "heat", "none")
    assert set(torch.nonzero(label).flatten().tolist()) == expected
    groups = torch.tensor(datamodule.slot_sizes).cumsum(0).tolist()  # [6, 20, 24]
    assert [int(label[a:b].sum()) for a, b in zip([0, *groups[:-1]], groups, strict=True)] == [1, 1, 1]


def test_training_batches_are_three_second_crops(root):
    batch = next(iter(ready(root, batch_size=4).train_dataloader()))
    assert batch["audio"].shape == (4, 48000) and batch["label"].shape == (4, 24)
    assert batch["padding_mask"].sum(1).tolist() == [48000 - 8000] * 4  # 0.5 s clips padded to 3 s


def test_evaluation_cuts_three_second_subclips(root):
    datamodule = ready(root, batch_size=3)
    clip_ids = torch.cat([batch["clip_id"] for batch in datamodule.subclip_dataloader("test")])
    counts = [math.ceil(s / 3.0) for s in layout.EVAL_SECONDS]  # 0.5, 3, 6, 7 s -> 1, 1, 2, 3
    assert clip_ids.tolist() == [clip for clip, count in enumerate(counts) for _ in range(count)]
    lengths = [soundfile.info(str(root / row["path"])).frames for row in csv_rows(root, "test")]
    assert lengths == [round(s * 16000) for s in layout.EVAL_SECONDS]


def test_missing_root_csv_and_audio_say_what_to_do(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="root not found.*fluent_speech_commands_dataset"):
        ready(tmp_path / "nowhere")
    removed = fresh_root / csv_rows(fresh_root, "valid")[1]["path"]
    removed.unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of 4 clips of .*valid_data.csv.*{removed.name}"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="1 of 4 clips"):
        assert len(ready(fresh_root, on_error="skip").dataset("valid", "random_crop")) == 3
    (fresh_root / "data" / "test_data.csv").unlink()
    with pytest.raises(FileNotFoundError, match="test_data.csv.*fluent.ai"):
        ready(fresh_root)


def test_bad_csvs_name_the_file_line_or_value(fresh_root):
    valid_csv = fresh_root / "data" / "valid_data.csv"
    lines = valid_csv.read_text().splitlines()
    valid_csv.write_text("\n".join([*lines, "9,wavs/x.wav,5o9BvRGEGvhaeBwA,Dance,dance,none,none"]))
    with pytest.raises(
        ValueError, match=r"valid_data.csv has action value\(s\) \['dance'\] that .*train_data"
    ):
        ready(fresh_root)
    valid_csv.write_text("\n".join([*lines, "9,wavs/x.wav,5o9BvRGEGvhaeBwA,Stop,,none,none"]))
    with pytest.raises(ValueError, match=r"valid_data.csv line 6: empty \['action'\]"):
        ready(fresh_root)
    valid_csv.write_text(",path,speakerId,transcription,action,object\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['location'\]"):
        ready(fresh_root)
    valid_csv.write_text(lines[0] + "\n")
    with pytest.raises(ValueError, match=r"split\(s\) \['valid'\] have no clip"):
        ready(fresh_root)


def hub_copy(root: Path, valid: str = "valid") -> dict:
    """The layout's three CSVs as in-memory hub splits (the columns of the CSVs, audio from the wavs)."""
    tables = {}
    for split, name in (("train", "train"), ("valid", valid), ("test", "test")):
        rows = csv_rows(root, split)
        columns = {column: [row[column] for row in rows] for column in layout.HEADER[1:]}
        waves = [soundfile.read(str(root / row["path"]))[0] for row in rows]
        tables[name] = hub.audio_table(columns, waves, 16000)
    return tables


def labels_of(datamodule: FluentSpeechCommandsDataModule) -> dict:
    return {
        split: datamodule.dataset(split, "subclips").label_pairs() for split in ("train", "valid", "test")
    }


@pytest.mark.parametrize("valid", ["valid", "validation"])
def test_a_hub_copy_gives_the_folder_classes_splits_and_labels(root, valid):
    folder, copy = ready(root), FluentSpeechCommandsDataModule(hub=hub_copy(root, valid), batch_size=4)
    copy.setup("fit")
    assert copy.classes == folder.classes and copy.slot_sizes == (6, 14, 4)
    for split, (items, classes) in labels_of(copy).items():
        expected_items, expected_classes = labels_of(folder)[split]
        assert torch.equal(items, expected_items) and torch.equal(classes, expected_classes)
    assert [len(copy.dataset(s, "random_crop")) for s in ("train", "valid", "test")] == [28, 4, 4]
    assert not copy.canonical  # 28 / 4 / 4 rows, not the official sizes
    assert "hub copy (28 / 4 / 4: not the official" in copy.split_note
    assert next(iter(copy.train_dataloader()))["label"].shape == (4, 24)


def test_hub_copy_errors_name_the_column_or_split(root):
    tables = hub_copy(root)
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        FluentSpeechCommandsDataModule()
    assert FluentSpeechCommandsDataModule.HUB is None
    broken = {**tables, "valid": tables["valid"].remove_columns("location")}
    with pytest.raises(ValueError, match=r"hub copy\[valid\] has no column 'location'"):
        FluentSpeechCommandsDataModule(hub=broken).setup()
    with pytest.raises(
        ValueError, match=r"splits train, valid \(or validation\) and test.*\['train', 'test'\]"
    ):
        FluentSpeechCommandsDataModule(hub={"train": tables["train"], "test": tables["test"]}).setup()
    with pytest.raises(ValueError, match=r"\[test\] row 0: empty \['action'\]"):
        empty = tables["test"].map(
            lambda row, i: {"action": "" if i == 0 else row["action"]}, with_indices=True
        )
        FluentSpeechCommandsDataModule(hub={**tables, "test": empty}).setup()
