"""Tests for BirdsongDataModule on a tiny copy of the Birdsong layout (tests/layouts/BirdsongDataModule.py);
the hash split and the split list files themselves are tested in test_group_split.py."""

import csv
import hashlib
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.data.audio.birdsong import BirdsongDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "BirdsongDataModule.py"))
)
"""The layout writer: `make(root)` and its helpers."""
hub = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "hub.py")))
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 3 corpora x 10 clips."""
    return Path(layout.make(tmp_path_factory.mktemp("birdsong"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_birdsong(tmp_path / "birdsong")


def ready(root: Path, **kwargs) -> BirdsongDataModule:
    datamodule = BirdsongDataModule(str(root), batch_size=4, **kwargs)
    datamodule.setup("fit")
    return datamodule


def items(datamodule: BirdsongDataModule, split: str) -> list[str]:
    """The item ids (`<corpus>/wav/<itemid>.wav`) of a split, in order."""
    paths = datamodule.dataset(split, "random_crop").paths
    return [paths[i].relative_to(datamodule.root).as_posix() for i in range(len(paths))]


def expected_split(seed: int, item: str) -> str:
    """The documented rule restated: sha256 of f"{seed}:{item}", first 8 bytes over 2**64, cut 0.8 / 0.9."""
    position = int.from_bytes(hashlib.sha256(f"{seed}:{item}".encode()).digest()[:8], "big") / 2**64
    return "train" if position < 0.8 else "valid" if position < 0.9 else "test"


def csv_rows(root: Path) -> dict[str, int]:
    """Item id -> hasbird, read from the three CSVs with the csv module."""
    rows = {}
    for corpus, (name, _) in layout.CORPORA.items():
        with open(root / corpus / name, newline="") as handle:
            for row in csv.DictReader(handle):
                rows[f"{corpus}/wav/{row['itemid']}.wav"] = int(row["hasbird"])
    return rows


def test_classes_and_the_split_note(root):
    datamodule = BirdsongDataModule(str(root))
    assert datamodule.classes == ("no_bird", "bird") and datamodule.num_classes == 2
    assert datamodule.label_type == "single" and datamodule.canonical is False
    assert "split_seed 0" in datamodule.split_note and "Tagliasacchi" in datamodule.split_note
    assert (datamodule.clip_seconds, datamodule.train_seconds) == (1.0, 1.0)


@pytest.mark.parametrize("split_seed", [0, 3])
def test_every_item_is_in_the_split_its_hash_names(root, split_seed):
    datamodule = ready(root, split_seed=split_seed)
    split_of = {item: split for split in SPLITS for item in items(datamodule, split)}
    assert sum(len(items(datamodule, split)) for split in SPLITS) == len(split_of) == 30
    assert split_of == {item: expected_split(split_seed, item) for item in csv_rows(root)}


def test_the_split_seed_moves_clips_and_the_training_seed_does_not(root):
    split = [items(ready(root), split) for split in SPLITS]
    assert [items(ready(root, seed=5), split) for split in SPLITS] == split
    assert [items(ready(root, split_seed=3), split) for split in SPLITS] != split


def test_labels_are_hasbird(root):
    datamodule = ready(root)
    hasbird = csv_rows(root)
    batch = next(iter(datamodule.train_dataloader()))
    train = items(datamodule, "train")
    assert batch["label"].tolist() == [hasbird[train[int(i)]] for i in batch["clip_id"]]


def test_training_crops_and_subclips(root):
    datamodule = ready(root)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 16000) and batch["audio"].dtype == torch.float32
    test = items(datamodule, "test")
    clip_ids = torch.cat([b["clip_id"] for b in datamodule.subclip_dataloader("test")]).tolist()
    for clip, item in enumerate(test):
        seconds = soundfile.info(str(root / item)).duration
        assert clip_ids.count(clip) == math.ceil(seconds / 1.0)
    assert set(clip_ids) == set(range(len(test)))


def test_a_subset_of_corpora(tmp_path):
    root = layout.write_birdsong(tmp_path / "birdsong", corpora=("ff1010bird",))
    with pytest.raises(FileNotFoundError, match=r"warblrb10k.*dcase.community.*corpora="):
        ready(root)
    datamodule = ready(root, corpora=["ff1010bird"])
    assert sum(len(items(datamodule, split)) for split in SPLITS) == 10
    with pytest.raises(ValueError, match="corpora must be distinct names"):
        BirdsongDataModule(str(root), corpora=["ff1010"])


def test_csv_errors_name_the_file_and_line(fresh_root):
    csv_path = fresh_root / "warblrb10k" / "warblrb10k_public_metadata_2018.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([*lines, "abc,warblrb10k,2"]))
    with pytest.raises(ValueError, match=f"{csv_path} line 12: hasbird must be 0 or 1, got '2'"):
        ready(fresh_root)
    csv_path.write_text("\n".join([*lines, lines[1]]))
    with pytest.raises(ValueError, match="line 12: itemid .* is listed twice"):
        ready(fresh_root)
    csv_path.write_text("itemid,hasbird\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['datasetid'\]"):
        ready(fresh_root)
    csv_path.unlink()
    with pytest.raises(FileNotFoundError, match="warblrb10k_public_metadata_2018.csv.*next to wav/"):
        ready(fresh_root)


def test_missing_root_and_audio(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="Birdsong root not found"):
        ready(tmp_path / "nowhere")
    removed = sorted((fresh_root / "ff1010bird" / "wav").glob("*.wav"))[:2]
    for path in removed:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=f"2 of 30 clips.*{removed[0].name}.*on_error='skip'"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="2 of 30 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert sum(len(items(datamodule, split)) for split in SPLITS) == 28


def test_split_files_round_trip_and_worked_example(root, tmp_path):
    written = tmp_path / "split.txt"
    datamodule = ready(root, split_seed=3)
    datamodule.write_split_file(written)
    lines = written.read_text().splitlines()
    assert lines == sorted(lines) and len(lines) == 30
    assert lines[0].split("\t")[0] in SPLITS
    again = ready(root, split_file=str(written))
    assert all(items(again, split) == items(datamodule, split) for split in SPLITS)
    ids = sorted(csv_rows(root))
    chosen = tmp_path / "chosen.txt"
    chosen.write_text(f"train\t{ids[0]}\ntrain\t{ids[1]}\nvalid\t{ids[2]}\ntest\t{ids[3]}\n")
    datamodule = ready(root, split_file=str(chosen))
    assert [items(datamodule, split) for split in SPLITS] == [ids[:2], [ids[2]], [ids[3]]]
    assert str(chosen) in datamodule.split_note


def test_bad_or_missing_split_file_and_empty_split(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="split file not found"):
        ready(root, split_file=str(tmp_path / "none.txt"))
    (tmp_path / "split.txt").write_text("train\tff1010bird/wav/1000.wav\ntrain\tff1010bird/wav/9.wav\n")
    with pytest.raises(ValueError, match="split.txt line 2: 'ff1010bird/wav/9.wav' is not an item"):
        ready(root, split_file=str(tmp_path / "split.txt"))
    (tmp_path / "split.txt").write_text("train\tff1010bird/wav/1000.wav\n")
    with pytest.raises(ValueError, match=r"split\(s\) \['valid', 'test'\] have no clip"):
        ready(root, split_file=str(tmp_path / "split.txt"))


def hub_table(root: Path):
    """The layout's three CSVs as one in-memory hub table (itemid, datasetid, hasbird, audio)."""
    rows = []
    for corpus, (name, _) in layout.CORPORA.items():
        with open(root / corpus / name, newline="") as handle:
            rows += list(csv.DictReader(handle))
    columns = {column: [row[column] for row in rows] for column in ("itemid", "datasetid", "hasbird")}
    columns["hasbird"] = [int(value) for value in columns["hasbird"]]
    paths = [root / row["datasetid"] / "wav" / f"{row['itemid']}.wav" for row in rows]
    return hub.audio_table(columns, [soundfile.read(str(path))[0] for path in paths], 8000)


def labels_of(datamodule: BirdsongDataModule) -> dict:
    return {split: datamodule.dataset(split, "subclips").label_pairs() for split in SPLITS}


@pytest.mark.parametrize(("split_seed", "corpora"), [(0, tuple(layout.CORPORA)), (3, ("warblrb10k",))])
def test_a_hub_copy_gives_the_folder_split_and_labels(root, split_seed, corpora):
    folder = ready(root, split_seed=split_seed, corpora=corpora)
    table = hub_table(root)
    halves = {"train": table.select(range(17, 30)), "test": table.select(range(17))}  # merged test, train
    copy = BirdsongDataModule(hub=halves, batch_size=4, split_seed=split_seed, corpora=corpora)
    copy.setup("fit")
    assert copy.classes == folder.classes == ("no_bird", "bird")
    sizes = [len(folder.dataset(split, "random_crop")) for split in SPLITS]
    assert [len(copy.dataset(split, "random_crop")) for split in SPLITS] == sizes
    assert sum(sizes) == 10 * len(corpora)
    for split, (items, classes) in labels_of(copy).items():
        expected_items, expected_classes = labels_of(folder)[split]
        assert torch.equal(items, expected_items) and torch.equal(classes, expected_classes)
    assert not copy.canonical and "of a hub copy item hash" in copy.split_note


def test_hub_copy_errors_name_the_column_or_value(root, tmp_path):
    table = hub_table(root)
    assert BirdsongDataModule.HUB is None
    with pytest.raises(ValueError, match="exactly one of root="):
        BirdsongDataModule()
    with pytest.raises(ValueError, match="split_file= .* cannot be used with hub="):
        BirdsongDataModule(hub={"train": table}, split_file=str(tmp_path / "split.txt"))
    with pytest.raises(ValueError, match="Birdsong hub copy has no column 'hasbird'"):
        BirdsongDataModule(hub={"train": table.remove_columns("hasbird")}).setup()
    renamed = table.map(lambda row: {"datasetid": row["datasetid"].lower()})
    with pytest.raises(ValueError, match="row 20: datasetid 'birdvox-dcase-20k' is none of the corpora"):
        BirdsongDataModule(hub={"train": renamed}).setup()
    with pytest.raises(ValueError, match="row 10: itemid .* is listed twice"):
        BirdsongDataModule(hub={"train": table.select([*range(10), 0])}).setup()
