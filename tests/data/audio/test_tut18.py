"""Tests for TUT18DataModule on a tiny copy of the TUT Urban Acoustic Scenes 2018 development layout
(tests/layouts/TUT18DataModule.py) and on in-memory hub tables (tests/layouts/hub.py)."""

import hashlib
import math
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.data.audio.tut18 import TUT18DataModule

layout = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "TUT18DataModule.py")))
"""The layout writer: `make(root)` and its helpers."""
hub = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "hub.py")))
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 10 scenes x 4 cities x 2 segments; London is fold1_evaluate."""
    return Path(layout.make(tmp_path_factory.mktemp("tut18"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_tut18(tmp_path / "TUT-urban-acoustic-scenes-2018-development")


def ready(root: Path, **kwargs) -> TUT18DataModule:
    datamodule = TUT18DataModule(str(root), batch_size=4, **kwargs)
    datamodule.setup("fit")
    return datamodule


def names(datamodule: TUT18DataModule, split: str) -> list[str]:
    """The file names (`<scene>-<city>-<location>-<segment>-a.wav`) of a split, in order."""
    paths = datamodule.dataset(split, "random_crop").paths
    return [paths[i].name for i in range(len(paths))]


def location(name: str) -> str:
    """The identifier `<city>-<location>` of a file name."""
    return "-".join(name.split("-")[1:3])


def in_valid(seed: int, identifier: str) -> bool:
    """The documented rule restated: sha256 of f"{seed}:{identifier}", first 8 bytes over 2**64 >= 0.9."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{identifier}".encode()).digest()[:8], "big") / 2**64 >= 0.9


def listed(root: Path, fold_list: str) -> set[str]:
    """The file names of an evaluation_setup list."""
    text = (root / "evaluation_setup" / fold_list).read_text()
    return {line.split("\t")[0].removeprefix("audio/") for line in text.splitlines()}


def test_classes_and_the_split_note(root):
    datamodule = TUT18DataModule(str(root))
    assert datamodule.classes == layout.SCENES and datamodule.num_classes == 10
    assert datamodule.label_type == "single" and datamodule.canonical is False
    assert "fold1_evaluate.txt" in datamodule.split_note and "Tagliasacchi" in datamodule.split_note
    assert (datamodule.clip_seconds, datamodule.train_seconds) == (5.0, 5.0)


@pytest.mark.parametrize("split_seed", [0, 1])
def test_test_is_fold1_evaluate_and_valid_takes_whole_locations(root, split_seed):
    datamodule = ready(root, split_seed=split_seed)
    train, valid, test = (set(names(datamodule, split)) for split in SPLITS)
    assert test == listed(root, "fold1_evaluate.txt") and len(test) == 20
    assert train | valid == listed(root, "fold1_train.txt") and not train & valid
    assert valid and all(in_valid(split_seed, location(name)) for name in valid)
    assert not any(in_valid(split_seed, location(name)) for name in train)
    locations = [{location(name) for name in split} for split in (train, valid, test)]
    assert not (locations[0] & locations[1] or locations[0] & locations[2] or locations[1] & locations[2])


def test_the_split_seed_moves_clips_and_the_training_seed_does_not(root):
    split = [names(ready(root), split) for split in SPLITS]
    assert [names(ready(root, seed=5), split) for split in SPLITS] == split
    assert [names(ready(root, split_seed=1), split) for split in SPLITS] != split
    assert "split_seed 1" in TUT18DataModule(str(root), split_seed=1).split_note


def test_labels_batches_and_subclips(root):
    datamodule = ready(root)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 80000) and batch["audio"].dtype == torch.float32
    train = names(datamodule, "train")
    scenes = [train[int(i)].split("-")[0] for i in batch["clip_id"]]
    assert batch["label"].tolist() == [layout.SCENES.index(scene) for scene in scenes]
    clip_ids = torch.cat([b["clip_id"] for b in datamodule.subclip_dataloader("valid")]).tolist()
    valid = datamodule.dataset("valid", "random_crop").paths
    for clip in range(len(valid)):
        assert clip_ids.count(clip) == math.ceil(soundfile.info(str(valid[clip])).duration / 5.0)
    assert sorted(set(clip_ids.count(clip) for clip in set(clip_ids))) == [1, 2]


def test_split_files_round_trip_and_worked_example(root, tmp_path):
    written = tmp_path / "split.txt"
    datamodule = ready(root, split_seed=1)
    datamodule.write_split_file(written)
    lines = written.read_text().splitlines()
    assert lines == sorted(lines) and len(lines) == 80 and lines[0].startswith("test\taudio/")
    again = ready(root, split_file=str(written))
    assert all(names(again, split) == names(datamodule, split) for split in SPLITS)
    chosen = tmp_path / "chosen.txt"
    chosen.write_text(
        "train\taudio/bus-lisbon-1-0-a.wav\nvalid\taudio/tram-london-9-1-a.wav\ntest\taudio/park-barcelona-4-0-a.wav\n"
    )
    datamodule = ready(root, split_file=str(chosen))
    assert [names(datamodule, split) for split in SPLITS] == [
        ["bus-lisbon-1-0-a.wav"],
        ["tram-london-9-1-a.wav"],
        ["park-barcelona-4-0-a.wav"],
    ]
    assert str(chosen) in datamodule.split_note
    chosen.write_text("train\tbus-lisbon-1-0-a.wav\n")
    with pytest.raises(ValueError, match="line 1: 'bus-lisbon-1-0-a.wav' is not an item"):
        ready(root, split_file=str(chosen))


def test_meta_errors_name_the_file_and_line(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="TUT18 root not found.*zenodo.org/record/1228142"):
        ready(tmp_path / "nowhere")
    meta = fresh_root / "meta.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join([*lines, "audio/x.wav\tbeach\tbarcelona-99\ta"]))
    with pytest.raises(ValueError, match=f"{meta} line 82: scene 'beach' is not one of"):
        ready(fresh_root)
    meta.write_text("\n".join(line.replace("\t", ",") for line in lines))
    with pytest.raises(ValueError, match=r"lacks column\(s\).*TAB-separated"):
        ready(fresh_root)
    meta.unlink()
    with pytest.raises(FileNotFoundError, match="meta.csv.*zenodo.org/record/1228142"):
        ready(fresh_root)


def test_fold_list_errors_name_the_line(fresh_root):
    fold = fresh_root / "evaluation_setup" / "fold1_train.txt"
    lines = fold.read_text().splitlines()
    fold.write_text("\n".join([*lines, "audio/bus-lisbon-1-0-a.wav\ttram"]))
    with pytest.raises(ValueError, match=f"{fold} line 61: audio/bus-lisbon-1-0-a.wav \\(tram\\) is 'bus'"):
        ready(fresh_root)
    fold.write_text("\n".join([*lines, "audio/bus-paris-1-0-a.wav\tbus"]))
    with pytest.raises(ValueError, match="line 61: .*bus-paris-1-0-a.wav \\(bus\\) is not in meta.csv"):
        ready(fresh_root)
    fold.write_text("\n".join([*lines, "audio/bus-london-1-0-a.wav\tbus"]))
    with pytest.raises(ValueError, match="share files, e.g. \\['audio/bus-london-1-0-a.wav'\\]"):
        ready(fresh_root)
    fold.write_text("audio/bus-lisbon-1-0-a.wav")
    with pytest.raises(ValueError, match="line 1: expected 'audio/<file>.wav<TAB><scene>'"):
        ready(fresh_root)
    fold.unlink()
    with pytest.raises(FileNotFoundError, match="fold1_train.txt.*evaluation_setup/"):
        ready(fresh_root)


def test_missing_audio_is_counted_then_raised_or_skipped(fresh_root):
    removed = sorted((fresh_root / "audio").glob("*-london-*.wav"))[:3]
    for path in removed:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=f"3 of 80 clips.*{removed[0].name}.*on_error='skip'"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="3 of 80 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert len(names(datamodule, "test")) == 17


def hub_tables(identifier: bool = True, paths: bool = False) -> dict:
    """Hub splits train / test: train has 30 locations (3 cities x 10 scenes) of 2 rows, test 10 rows."""
    import datasets

    def table(cities: tuple[str, ...], segments: int):
        rows = [(s, c, g) for s, _ in enumerate(layout.SCENES) for c in cities for g in range(segments)]
        columns = {"scene_label": [layout.SCENES[s] for s, _, _ in rows], "source_label": ["a"] * len(rows)}
        if identifier:
            columns["identifier"] = [f"{c}-{s}" for s, c, _ in rows]
        waves = [hub.tone(100 + 50 * s, 1.0 + g, 2000) for s, _, g in rows]
        if not paths:
            return hub.audio_table(columns, waves, 2000)
        cells = [
            {"bytes": hub.wav_bytes(w, 2000), "path": f"{layout.SCENES[s]}-{c}-{s}-{g}-a.wav"}
            for w, (s, c, g) in zip(waves, rows, strict=True)
        ]
        return datasets.Dataset.from_dict({**columns, "audio": cells}).cast_column("audio", datasets.Audio())

    return {"train": table(("barcelona", "helsinki", "lisbon"), 2), "test": table(("london",), 1)}


@pytest.mark.parametrize(("identifier", "paths", "split_seed"), [(True, False, 0), (False, True, 1)])
def test_hub_carves_valid_by_location(identifier, paths, split_seed):
    """Valid holds the locations the hash of `split_seed` names; the training seed plays no part."""
    tables = hub_tables(identifier, paths)
    datamodule = TUT18DataModule(hub=tables, batch_size=4, seed=5, split_seed=split_seed)
    datamodule.setup()
    splits = datamodule._splits
    expected = [f"{c}-{s}" for s, _ in enumerate(layout.SCENES) for c in ("barcelona", "helsinki", "lisbon")]
    valid_rows = [
        2 * i + g for i, place in enumerate(expected) if in_valid(split_seed, place) for g in range(2)
    ]
    assert list(splits["valid"].rows) == valid_rows and valid_rows
    assert sorted([*splits["train"].rows, *splits["valid"].rows]) == list(range(60))
    assert list(splits["test"].rows) == list(range(10)) and splits["test"].table.num_rows == 10
    assert [labels[0] for labels in splits["test"].labels] == list(layout.SCENES)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (4, 80000)
    rows = [splits["train"].rows[int(i)] for i in batch["clip_id"]]
    assert batch["label"].tolist() == [row // 6 for row in rows]  # 6 rows a scene in train
    grouping = "identifier column" if identifier else "audio file names"
    assert grouping in datamodule.split_note


def test_hub_errors_say_what_is_missing():
    tables = hub_tables(identifier=False, paths=False)
    with pytest.raises(ValueError, match="no identifier column and its audio cells name no file"):
        TUT18DataModule(hub=tables).setup()
    with pytest.raises(ValueError, match=r"lacks split\(s\) \['test'\]; its splits are \['train'\]"):
        TUT18DataModule(hub={"train": tables["train"]}).setup()
    with pytest.raises(ValueError, match="exactly one of root="):
        TUT18DataModule()
    with pytest.raises(ValueError, match="split_file= names files under root="):
        TUT18DataModule(hub=tables, split_file="split.txt")
    datamodule = TUT18DataModule(hub=hub_tables())
    with pytest.raises(ValueError, match="a split file names audio files under root="):
        datamodule.write_split_file("split.txt")
