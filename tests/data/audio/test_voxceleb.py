"""Tests for VoxCeleb1DataModule on a tiny copy of its layout (tests/layouts/VoxCeleb1DataModule.py)."""

import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.data.audio.voxceleb import VoxCeleb1DataModule

LAYOUTS = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "VoxCeleb1DataModule.py")))
hub = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "hub.py")))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 5 speakers, 15 / 5 / 5 utterances."""
    return Path(layout.make(tmp_path_factory.mktemp("voxceleb"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_voxceleb1(tmp_path / "voxceleb1")


def ready(root: Path, **kwargs) -> VoxCeleb1DataModule:
    datamodule = VoxCeleb1DataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def listed(root: Path, code: str) -> list[Path]:
    """The wav paths of one split code of iden_split.txt, in file order."""
    lines = [line.split() for line in (root / "iden_split.txt").read_text().splitlines()]
    return [root / "wav" / path for split, path in lines if split == code]


def test_classes_are_the_sorted_speakers(root):
    datamodule = VoxCeleb1DataModule(str(root))
    assert datamodule.classes == ("id10001", "id10002", "id10003", "id10270", "id10271")
    assert datamodule.label_type == "single" and datamodule.canonical
    assert "iden_split.txt" in datamodule.split_note


def test_splits_follow_iden_split_and_every_speaker_is_in_each(root):
    datamodule = ready(root)
    for split, code, size in (("train", "1", 15), ("valid", "2", 5), ("test", "3", 5)):
        dataset = datamodule.dataset(split, "random_crop")
        paths = [dataset.paths[i] for i in range(len(dataset))]
        assert len(paths) == size and paths == listed(root, code)
        assert {path.parts[-3] for path in paths} == set(layout.SPEAKERS)


def test_training_batches_are_three_second_crops_labelled_by_speaker(root):
    datamodule = ready(root, batch_size=4)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 48000) and not batch["padding_mask"].any()  # 3 s inside 4 s clips
    paths = datamodule.dataset("train", "random_crop").paths
    speakers = [paths[int(i)].parts[-3] for i in batch["clip_id"]]
    assert batch["label"].tolist() == [datamodule.classes.index(s) for s in speakers]


def test_evaluation_cuts_three_second_subclips(root):
    datamodule = ready(root, batch_size=4)
    clip_ids = torch.cat([batch["clip_id"] for batch in datamodule.val_dataloader()])
    counts = [math.ceil(seconds / 3.0) for seconds in layout.EVAL_SECONDS]  # 1, 1, 2, 3, 3
    assert clip_ids.tolist() == [clip for clip, count in enumerate(counts) for _ in range(count)]


def test_missing_root_list_and_audio_say_what_to_do(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="VoxCeleb1 root not found.*registration"):
        ready(tmp_path / "nowhere")
    removed = listed(fresh_root, "3")[2]
    removed.unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 5 clips of .*iden_split.txt \(test\).*id10003/"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="1 of 5 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert len(datamodule.dataset("test", "random_crop")) == 4 and len(datamodule.classes) == 5
    (fresh_root / "iden_split.txt").unlink()
    with pytest.raises(
        FileNotFoundError,
        match="split list not found: .*iden_split.txt; download it from .*meta/iden_split.txt",
    ):
        ready(fresh_root)


def test_bad_lines_and_empty_splits_name_the_file(fresh_root):
    split_list = fresh_root / "iden_split.txt"
    lines = split_list.read_text().splitlines()
    split_list.write_text("\n".join([*lines[:3], "4 id10001/1zcIwhmdeo4/00009.wav", *lines[3:]]))
    with pytest.raises(ValueError, match="iden_split.txt line 4: expected .*got '4 id10001"):
        ready(fresh_root)
    split_list.write_text("\n".join([*lines[:3], "1 id10001/00009.wav"]))
    with pytest.raises(ValueError, match="line 4: expected"):
        ready(fresh_root)
    split_list.write_text("\n".join(line for line in lines if not line.startswith("2 ")))
    with pytest.raises(ValueError, match=r"split\(s\) \['valid'\] have no clip \(valid: lines 2 of "):
        ready(fresh_root)


def hub_table(root: Path, codes: dict[str, object] | None = None):
    """iden_split.txt as one in-memory hub table (columns split, speaker, audio), codes mapped by `codes`."""
    lines = [line.split() for line in (root / "iden_split.txt").read_text().splitlines()]
    columns = {
        "split": [(codes or {}).get(code, int(code)) for code, _ in lines],
        "speaker": [entry.split("/")[0] for _, entry in lines],
    }
    waves = [soundfile.read(str(root / "wav" / entry))[0] for _, entry in lines]
    return hub.audio_table(columns, waves, 16000)


def labels_of(datamodule: VoxCeleb1DataModule) -> dict:
    return {
        split: datamodule.dataset(split, "subclips").label_pairs() for split in ("train", "valid", "test")
    }


def test_a_hub_copy_gives_the_folder_classes_splits_and_labels(root):
    folder = ready(root)
    table = hub_table(root)
    by_name = hub_table(root, {"1": "train", "2": "valid", "3": "test"})
    codes = table["split"]
    splits = {
        name: table.select([row for row, code in enumerate(codes) if code == n])
        for name, n in (("train", 1), ("validation", 2), ("test", 3))
    }
    for tables in ({"train": table}, {"train": by_name}, splits):
        copy = VoxCeleb1DataModule(hub=tables, batch_size=4)
        copy.setup("fit")
        assert copy.classes == folder.classes == layout.SPEAKERS
        assert [len(copy.dataset(s, "random_crop")) for s in ("train", "valid", "test")] == [15, 5, 5]
        for split, (items, classes) in labels_of(copy).items():
            expected_items, expected_classes = labels_of(folder)[split]
            assert torch.equal(items, expected_items) and torch.equal(classes, expected_classes)
        assert not copy.canonical and "hub copy (15 / 5 / 5: not the official" in copy.split_note


def test_hub_copy_errors_name_the_column_or_value(root):
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        VoxCeleb1DataModule(str(root), hub="yangwang825/vox1-iden-full")
    assert VoxCeleb1DataModule.HUB is None
    table = hub_table(root)
    with pytest.raises(ValueError, match="needs a split column.* has no column 'split'"):
        VoxCeleb1DataModule(hub={"train": table.remove_columns("split")}).setup()
    with pytest.raises(ValueError, match=r"hub copy has no column 'speaker'"):
        VoxCeleb1DataModule(hub={"train": table.remove_columns("speaker")}).setup()
    with pytest.raises(ValueError, match=r"split value\(s\) \['4'\] are none of"):
        VoxCeleb1DataModule(hub={"train": hub_table(root, {"3": 4})}).setup()
    numbers = table.map(lambda row: {"speaker": row["speaker"].removeprefix("id")})
    with pytest.raises(ValueError, match=r"speaker\(s\) \['10001', .* are not VoxCeleb1 ids like id10001"):
        VoxCeleb1DataModule(hub={"train": numbers}).setup()
