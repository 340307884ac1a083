"""Tests for MagnaTagATuneDataModule on a tiny copy of its layout (tests/layouts/<class name>.py)."""

import csv
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.audio import AudioDecodeError
from ssl_lightning.data.audio.magnatagatune import MagnaTagATuneDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "MagnaTagATuneDataModule.py"))
)
"""The layout writer: `make(root)` and its helpers."""
hub = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "hub.py")))

SPLIT_FOLDERS = {"train": set("0123456789ab"), "valid": {"c"}, "test": {"d", "e", "f"}}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 2 clips in each of the 16 folders and the 3 empty mp3s."""
    return Path(layout.make(tmp_path_factory.mktemp("mtat"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_magnatagatune(tmp_path / "magnatagatune")


def ready(root: Path, **kwargs) -> MagnaTagATuneDataModule:
    datamodule = MagnaTagATuneDataModule(str(root), batch_size=4, **kwargs)
    datamodule.setup("fit")
    return datamodule


def _mp3_paths(datamodule: MagnaTagATuneDataModule, split: str) -> list[str]:
    """`<folder>/<name>.mp3` of every clip of a split."""
    dataset = datamodule.dataset(split, "random_crop")
    return [f"{dataset.paths[i].parent.name}/{dataset.paths[i].name}" for i in range(len(dataset))]


def test_top50_classes_in_musicnn_order():
    datamodule = MagnaTagATuneDataModule("unused")
    assert datamodule.num_classes == 50 and datamodule.label_type == "multi"
    assert datamodule.classes[:3] == ("guitar", "classical", "slow") and datamodule.classes[21] == "no vocals"
    assert datamodule.classes[-1] == "choral" and len(set(datamodule.classes)) == 50


def test_pons_split_is_the_folders_less_three_clips(root):
    datamodule = ready(root)
    assert datamodule.canonical and "35644" in datamodule.split_note
    paths = {split: _mp3_paths(datamodule, split) for split in SPLIT_FOLDERS}
    assert [len(paths[split]) for split in SPLIT_FOLDERS] == [24, 2, 6]
    for split, folders in SPLIT_FOLDERS.items():
        assert {path[0] for path in paths[split]} == folders
    assert not set(layout.BROKEN.values()) & set(paths["train"])


def test_directory_split_keeps_every_clip_and_names_the_empty_mp3s(root):
    datamodule = ready(root, split="directory")
    assert not datamodule.canonical and "directory split" in datamodule.split_note
    assert len(_mp3_paths(datamodule, "train")) == 27
    with pytest.raises(AudioDecodeError, match="norine_braun-now_and_zen-08-gently-117-146.mp3"):
        datamodule.subclip_dataloader("train")
    with pytest.warns(UserWarning, match="skipped 3 of 27"):
        skipping = ready(root, split="directory", on_error="skip").dataset("train", "subclips")
    assert sorted(f"{path.parent.name}/{path.name}" for path in skipping.skipped) == sorted(
        layout.BROKEN.values()
    )


def _label_sets(datamodule: MagnaTagATuneDataModule, split: str) -> dict[str, list[int]]:
    """The class indices of every clip of a split, by `<folder>/<name>.mp3` (read without decoding)."""
    items, classes = datamodule.dataset(split, "random_crop").label_pairs()
    paths = _mp3_paths(datamodule, split)
    return {path: classes[items == i].tolist() for i, path in enumerate(paths)}


def test_labels_are_the_top50_tags_of_the_csv(root):
    datamodule = ready(root)
    with open(root / "annotations_final.csv", newline="") as handle:
        rows = {row["mp3_path"]: row for row in csv.DictReader(handle, delimiter="\t")}
    labels = _label_sets(datamodule, "train")
    for path, indices in labels.items():
        assert indices == [i for i, tag in enumerate(datamodule.classes) if rows[path][tag] == "1"]
    # worked example: clip 2 of folder 1 has "female opera", "male vocal", "vocals" (columns 12-14);
    # "female opera" is no top-50 tag, "male vocal" and "vocals" are classes 27 and 20
    assert labels["1/artist_1-album_0-01-title_2-0-29.mp3"] == [20, 27]
    assert [] in labels.values()  # clips without a top-50 tag stay, with an all-zero label
    batch = next(iter(datamodule.subclip_dataloader("train", batch_size=1)))
    assert batch["label"].shape == (1, 50) and torch.nonzero(batch["label"][0]).flatten().tolist() == [44]


def test_crops_and_subclips_last_3_seconds(root):
    datamodule = ready(root)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 48000) and batch["label"].shape == (4, 50)
    assert not batch["padding_mask"].any()
    clip_ids = torch.cat([batch["clip_id"] for batch in datamodule.test_dataloader()])
    # the test clips alternate 4 s (2 sub-clips) and 7 s (3 sub-clips)
    assert clip_ids.tolist() == [clip for clip in range(6) for _ in range(2 if clip % 2 == 0 else 3)]


def test_missing_root_csv_and_mp3s_say_what_to_do(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="MagnaTagATune root not found.*the-magnatagatune-dataset"):
        ready(tmp_path / "nowhere")
    removed = sorted((fresh_root / "c").glob("*.mp3"))[0]
    removed.unlink()
    with pytest.raises(FileNotFoundError, match=f"1 of 32 clips.*c/{removed.name}.*on_error='skip'"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="1 of 32 clips"):
        assert len(_mp3_paths(ready(fresh_root, on_error="skip"), "valid")) == 1
    (fresh_root / "annotations_final.csv").unlink()
    with pytest.raises(FileNotFoundError, match="annotations_final.csv.*the-magnatagatune-dataset"):
        ready(fresh_root)


def _rewrite(csv_path: Path, original: str, edit) -> None:
    """Write the CSV text `original` back to `csv_path` (real format) after `edit(header, rows)`."""
    header, *rows = csv.reader(original.splitlines(), delimiter="\t")
    edit(header, rows)
    with open(csv_path, "w", newline="") as handle:
        csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(
            [header, *rows]
        )


def test_bad_csv_rows_name_the_line(fresh_root):
    csv_path = fresh_root / "annotations_final.csv"
    original = csv_path.read_text()
    _rewrite(csv_path, original, lambda header, rows: rows[1].__setitem__(header.index("guitar"), "2"))
    with pytest.raises(
        ValueError, match=r"line 3 \(clip 6\): tag values must be 0 or 1, got \{'guitar': '2'\}"
    ):
        ready(fresh_root)
    _rewrite(csv_path, original, lambda header, rows: rows[1].__setitem__(-1, "g/clip.mp3"))
    with pytest.raises(ValueError, match="line 3 .*mp3_path 'g/clip.mp3' is not"):
        ready(fresh_root)
    _rewrite(csv_path, original, lambda header, rows: rows[1].pop())
    with pytest.raises(ValueError, match="line 3: 189 fields, the header has 190"):
        ready(fresh_root)
    _rewrite(
        csv_path, original, lambda header, rows: header.__setitem__(header.index("no vocals"), "novocals")
    )
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['no vocals'\]"):
        ready(fresh_root)
    csv_path.write_text(original.replace("\t", ","))
    with pytest.raises(ValueError, match="lacks the column.*tab-separated"):
        ready(fresh_root)
    csv_path.write_text(original.splitlines(keepends=True)[0])
    with pytest.raises(ValueError, match="has a header but no clip rows"):
        ready(fresh_root)


def test_bad_arguments_raise_early(root):
    with pytest.raises(ValueError, match="split must be 'pons' or 'directory'"):
        MagnaTagATuneDataModule(str(root), split="won")
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        MagnaTagATuneDataModule()
    assert MagnaTagATuneDataModule.HUB is None


def hub_table(root: Path, tags_list: bool = False):
    """annotations_final.csv as one in-memory hub table: clip_id, mp3_path, the 188 tag columns (or a
    `tags` list of the clip's tags) and the audio (a short tone for the three empty mp3s)."""
    with open(root / "annotations_final.csv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    columns = {
        "clip_id": [int(row["clip_id"]) for row in rows],
        "mp3_path": [row["mp3_path"] for row in rows],
    }
    if tags_list:
        columns["tags"] = [[tag for tag in layout.TAGS if row[tag] == "1"] for row in rows]
    else:
        columns |= {tag: [int(row[tag]) for row in rows] for tag in layout.TAGS}
    broken = set(layout.BROKEN.values())
    waves = [
        hub.tone(300, 0.5, 16000)
        if row["mp3_path"] in broken
        else soundfile.read(str(root / row["mp3_path"]))[0]
        for row in rows
    ]
    return hub.audio_table(columns, waves, 16000)


@pytest.mark.parametrize("tags_list", [False, True])
def test_a_hub_copy_gives_the_folder_split_and_labels(root, tags_list):
    folder, table = ready(root), hub_table(root, tags_list)
    copy = MagnaTagATuneDataModule(hub={"train": table}, batch_size=4)
    copy.setup("fit")
    assert copy.classes == folder.classes and copy.canonical
    for split in ("train", "valid", "test"):
        items, classes = copy.dataset(split, "random_crop").label_pairs()
        expected_items, expected_classes = folder.dataset(split, "random_crop").label_pairs()
        assert torch.equal(items, expected_items) and torch.equal(classes, expected_classes)
    assert [len(copy.dataset(split, "random_crop")) for split in ("train", "valid", "test")] == [24, 2, 6]
    assert "a hub copy's mp3_path" in copy.split_note
    directory = MagnaTagATuneDataModule(hub={"train": table}, split="directory")
    directory.setup()
    assert [len(directory.dataset(s, "random_crop")) for s in ("train", "valid", "test")] == [27, 2, 6]


def test_hub_copy_errors_name_the_column_or_value(root):
    table = hub_table(root)
    with pytest.raises(ValueError, match="hub copy has no column 'mp3_path'"):
        MagnaTagATuneDataModule(hub={"train": table.remove_columns("mp3_path")}).setup()
    with pytest.raises(ValueError, match=r"hub copy \(no tags column\) has no column 'guitar'"):
        MagnaTagATuneDataModule(hub={"train": table.remove_columns("guitar")}).setup()
    moved = table.map(lambda row: {"mp3_path": row["mp3_path"].replace("f/", "g/")})
    with pytest.raises(ValueError, match=r"row 3[0-9] \(clip \d+\): mp3_path 'g/.*' is not <0-9 or a-f>"):
        MagnaTagATuneDataModule(hub={"train": moved}).setup()
