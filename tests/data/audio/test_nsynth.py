"""Tests for NSynthDataModule on a tiny copy of the NSynth layout (tests/layouts/NSynthDataModule.py)."""

import json
import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssl_lightning.data.audio.nsynth import NSynthDataModule

layouts = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(layouts / "NSynthDataModule.py")))
"""The layout writer: `make(root)` and its helpers."""
hub_tables = SimpleNamespace(**runpy.run_path(str(layouts / "hub.py")))

FAMILIES = (
    *("bass", "brass", "flute", "guitar", "keyboard", "mallet"),
    *("organ", "reed", "string", "synth_lead", "vocal"),
)
"""NSynth's instrument_family 0..10, written out independently of the library."""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 11 instruments a split, 22 / 11 / 11 notes."""
    return Path(layout.make(tmp_path_factory.mktemp("nsynth"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_nsynth(tmp_path / "nsynth")


def ready(root: Path, **kwargs) -> NSynthDataModule:
    datamodule = NSynthDataModule(str(root), batch_size=4, **kwargs)
    datamodule.setup("fit")
    return datamodule


def _notes(datamodule: NSynthDataModule, split: str) -> list[str]:
    """The note_str of every clip of a split, from the file names."""
    dataset = datamodule.dataset(split, "random_crop")
    return [dataset.paths[i].stem for i in range(len(dataset))]


def test_classes_and_flags():
    instrument = NSynthDataModule("unused", task="instrument")
    assert instrument.classes == FAMILIES and instrument.num_classes == 11
    pitch = NSynthDataModule("unused", task="pitch")
    assert pitch.num_classes == 128 and pitch.classes[0] == "0" and pitch.classes[127] == "127"
    assert instrument.label_type == pitch.label_type == "single"
    assert instrument.canonical and "examples.json" in instrument.split_note


def test_official_splits_keep_instruments_apart(root):
    datamodule = ready(root)
    notes = {split: _notes(datamodule, split) for split in ("train", "valid", "test")}
    assert [len(notes[split]) for split in notes] == [22, 11, 11]
    instruments = {split: {note.split("-")[0] for note in names} for split, names in notes.items()}
    assert len(instruments["train"]) == 11
    assert not instruments["train"] & instruments["valid"] and not instruments["train"] & instruments["test"]


@pytest.mark.parametrize("task", ["instrument", "pitch"])
def test_labels_follow_the_note_names(root, task):
    """A note_str is <family>_<source>_<nnn>-<pitch>-<velocity>: the label comes from its family or pitch."""
    datamodule = ready(root, task=task)
    batch = next(iter(datamodule.train_dataloader()))
    paths = datamodule.dataset("train", "random_crop").paths
    for clip, label in zip(batch["clip_id"], batch["label"], strict=True):
        instrument, pitch, _ = paths[int(clip)].stem.split("-")
        family = instrument.rsplit("_", 2)[0]
        assert int(label) == (FAMILIES.index(family) if task == "instrument" else int(pitch))


def test_hares_crops_per_task(root):
    """Instrument: whole 4 s clips, one sub-clip each; pitch: 1 s crops, 4 sub-clips of each 4 s note."""
    instrument = ready(root)
    assert next(iter(instrument.train_dataloader()))["audio"].shape == (4, 64000)
    test = torch.cat([batch["clip_id"] for batch in instrument.subclip_dataloader("test")])
    assert test.tolist() == list(range(11))
    pitch = ready(root, task="pitch")
    batch = next(iter(pitch.train_dataloader()))
    assert batch["audio"].shape == (4, 16000) and not batch["padding_mask"].any()
    valid = torch.cat([batch["clip_id"] for batch in pitch.subclip_dataloader("valid")])
    assert valid.tolist() == [clip for clip in range(11) for _ in range(4)]


def test_missing_root_and_metadata_say_where_to_download(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="NSynth root not found.*jsonwav.tar.gz"):
        ready(tmp_path / "nowhere")
    (fresh_root / "nsynth-valid" / "examples.json").unlink()
    with pytest.raises(FileNotFoundError, match="nsynth-valid/examples.json.*nsynth-valid.jsonwav.tar.gz"):
        ready(fresh_root)


def test_missing_audio_is_counted_then_raised_or_skipped(fresh_root):
    removed = sorted((fresh_root / "nsynth-test" / "audio").glob("*.wav"))[:2]
    for path in removed:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=f"2 of 11 clips.*{removed[0].stem}.*on_error='skip'"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="2 of 11 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert len(_notes(datamodule, "test")) == 9


def _edit_first_note(root: Path, **fields) -> str:
    """Change fields of the first train note of examples.json; return its note_str."""
    path = root / "nsynth-train" / "examples.json"
    notes = json.loads(path.read_text())
    name = next(iter(notes))
    notes[name].update(fields)
    path.write_text(json.dumps(notes))
    return name


def test_bad_notes_are_named(fresh_root):
    name = _edit_first_note(fresh_root, instrument_family=3)  # a bass note claiming family 3 (guitar)
    with pytest.raises(
        ValueError, match=f"note '{name}': instrument_family 3 / instrument_family_str 'bass'"
    ):
        ready(fresh_root)
    ready(fresh_root, task="pitch")  # the pitch task does not read the family
    _edit_first_note(fresh_root, pitch=128)
    with pytest.raises(ValueError, match=f"note '{name}': pitch 128 is not a MIDI note number 0..127"):
        ready(fresh_root, task="pitch")
    (fresh_root / "nsynth-train" / "examples.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="nsynth-train/examples.json must hold a JSON object"):
        ready(fresh_root, task="pitch")


def _hub_splits(split_names=("train", "validation", "test")) -> dict:
    """The hub copy's columns: 2 notes per split, 1.5 s at 16 kHz (`pitch` 60 + row, family = row)."""
    return {
        name: hub_tables.audio_table(
            {
                "id": [f"{name}{row}" for row in range(2)],
                "pitch": [60 + row for row in range(2)],
                "instrument_family": [row for row in range(2)],
                "instrument_family_str": [FAMILIES[row] for row in range(2)],
            },
            [hub_tables.tone(440.0, 1.5, 16000) for _ in range(2)],
            16000,
        )
        for name in split_names
    }


def test_hub_copy_maps_validation_to_valid():
    datamodule = NSynthDataModule(hub=_hub_splits(), task="pitch", batch_size=2)
    datamodule.setup("fit")
    batch = next(iter(datamodule.subclip_dataloader("valid", batch_size=8)))
    assert batch["clip_id"].tolist() == [0, 0, 1, 1]  # 1.5 s: two 1 s sub-clips each
    assert batch["label"].tolist() == [60, 60, 61, 61]
    instrument = NSynthDataModule(hub=_hub_splits(), batch_size=2)
    instrument.setup("fit")
    assert next(iter(instrument.test_dataloader()))["label"].tolist() == [0, 1]


def test_hub_copy_without_a_split_says_which():
    with pytest.raises(
        ValueError, match=r"lacks the split\(s\) \['validation'\]; it has \['train', 'test'\]"
    ):
        NSynthDataModule(hub=_hub_splits(("train", "test"))).setup("fit")


def test_bad_arguments_raise_early(root):
    with pytest.raises(ValueError, match="task must be one of"):
        NSynthDataModule(str(root), task="velocity")
    with pytest.raises(ValueError, match="exactly one of root=.*and hub="):
        NSynthDataModule()
    with pytest.raises(ValueError, match="exactly one of root=.*and hub="):
        NSynthDataModule(str(root), hub="jg583/NSynth")
