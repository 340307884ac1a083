"""`NSynthDataModule`: NSynth notes by instrument family (11 classes) or pitch (128 MIDI notes), as in HARES.

Layout of the three unpacked `nsynth-{train,valid,test}.jsonwav.tar.gz` archives under `root` (`nsynth/`):

    <root>/nsynth-<split>/examples.json          a dict keyed by note_str, e.g. "bass_synthetic_033-022-050":
                                                 {"pitch": 22, "instrument_family": 0,
                                                  "instrument_family_str": "bass", "velocity": 50, ...}
    <root>/nsynth-<split>/audio/<note_str>.wav   4 s, 16 kHz mono

The splits are the official ones (289,205 / 12,678 / 4,096 notes; no instrument is in two of them), which
TFDS `nsynth` serves and HARES used. Crops (HARES Appendix A): the instrument task trains and evaluates on
whole 4 s clips; the pitch task trains on random 1 s crops and averages 4 non-overlapping 1 s sub-clips.

Hugging Face copy: `jg583/NSynth` (splits train / validation / test; the json fields as columns plus `id`
and `audio`), read with `hub="jg583/NSynth"` at the hub's parquet conversion `PARQUET`, since it is a loading
script. Where that branch is missing, build the copy with its script elsewhere and pass its `save_to_disk`
folder as hub=.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import PARQUET, HubInput, HubSource, HubSplit, hub_column
from ssl_lightning.data.manifest import OnError

Task = Literal["instrument", "pitch"]
FAMILIES = (
    *("bass", "brass", "flute", "guitar", "keyboard", "mallet"),
    *("organ", "reed", "string", "synth_lead", "vocal"),
)
"""The 11 `instrument_family_str` names, in `instrument_family` index order."""
NUM_PITCHES = 128
CLASSES: dict[str, tuple[str, ...]] = {
    "instrument": FAMILIES,
    "pitch": tuple(str(pitch) for pitch in range(NUM_PITCHES)),
}
"""Class names per task; pitch classes are the MIDI note numbers 0..127 (all 128 outputs, as HARES)."""
FIELDS: dict[str, tuple[str, ...]] = {
    "instrument": ("instrument_family", "instrument_family_str"),
    "pitch": ("pitch",),
}
"""The note fields a task's label comes from."""
CLIP_SECONDS = {"instrument": 4.0, "pitch": 1.0}
"""HARES's training crop and evaluation sub-clip length per task."""
FOLDERS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
EXAMPLES = "examples.json"
DOWNLOAD = "http://download.magenta.tensorflow.org/datasets/nsynth/{folder}.jsonwav.tar.gz"


def note_class(task: Task, note: Mapping[str, Any], where: str) -> str:
    """The class name of one note (an examples.json entry or a hub row, named `where` in errors).

    Raises:
        ValueError: a field of the task is missing, the pitch is not an int in 0..127, or the family
            index and name are not one of the 11 families.
    """
    missing = [field for field in FIELDS[task] if field not in note]
    if missing:
        raise ValueError(f"{where} lacks the field(s) {missing} that the {task} task reads")
    if task == "pitch":
        pitch = note["pitch"]
        if not isinstance(pitch, int) or not 0 <= pitch < NUM_PITCHES:
            raise ValueError(f"{where}: pitch {pitch!r} is not a MIDI note number 0..{NUM_PITCHES - 1}")
        return str(pitch)
    family, name = note["instrument_family"], note["instrument_family_str"]
    if name not in FAMILIES or FAMILIES.index(name) != family:
        raise ValueError(
            f"{where}: instrument_family {family!r} / instrument_family_str {name!r} is not one of the "
            f"families {dict(enumerate(FAMILIES))}"
        )
    return name


def read_examples(path: Path, task: Task) -> list[tuple[str, str]]:
    """(note_str, class name) of every note of one split's `examples.json`, in file order.

    Raises:
        FileNotFoundError: no such file (the message names the archive it comes from).
        ValueError: the file is not a JSON object of note objects, or a note's label is bad (see
            `note_class`; the message names the note).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"NSynth metadata not found: {path}. Unpack {DOWNLOAD.format(folder=path.parent.name)} under "
            "root (the folder that holds nsynth-train/, nsynth-valid/ and nsynth-test/)"
        )
    try:
        notes = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); restore it from the NSynth archive") from None
    if not isinstance(notes, dict) or not all(isinstance(note, dict) for note in notes.values()):
        raise ValueError(f"{path} must hold a JSON object mapping each note_str to an object of its fields")
    return [(name, note_class(task, note, f"{path} note {name!r}")) for name, note in notes.items()]


class NSynthDataModule(AudioClassificationDataModule):
    """NSynth's official splits, labelled by instrument family or pitch; see the module docstring.

    Clips are single-label, served at `sample_rate`. Notes of examples.json without an audio file are
    counted and reported in `setup` (raise, or leave them out with `on_error="skip"`).

    Args:
        root: `nsynth/`, holding the unpacked nsynth-train/, nsynth-valid/ and nsynth-test/.
        task: "instrument" (11 families) or "pitch" (128 MIDI notes).
        clip_seconds: evaluation sub-clip length (None: HARES's, 4 s for instrument, 1 s for pitch).
        train_seconds: training crop length (None: `clip_seconds`, as HARES).
        hub: read the notes from Hugging Face instead of `root` (`"jg583/NSynth"`, or in-memory splits
            train / validation / test with its columns); see `AudioClassificationDataModule`.
    """

    HUB = HubSource("jg583/NSynth", revision=PARQUET)

    label_type = "single"
    canonical = True
    """The official splits, which HARES used."""

    def __init__(
        self,
        root: str | None = None,
        task: Task = "instrument",
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float | None = None,
        train_seconds: float | None = None,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        if task not in CLASSES:
            raise ValueError(f"task must be one of {list(CLASSES)}, got {task!r}")
        seconds = CLIP_SECONDS[task] if clip_seconds is None else clip_seconds
        super().__init__(batch_size, num_workers, sample_rate, seconds, on_error, seed, train_seconds, hub)
        archives = DOWNLOAD.format(folder="nsynth-<split>")
        self.root = self.source_root(root, hub, f"the folder of the unpacked {archives} archives")
        self.save_hyperparameters(ignore=["hub"])

    @property
    def classes(self) -> tuple[str, ...]:
        """The 11 families in `instrument_family` order, or the MIDI pitches "0".."127"."""
        return CLASSES[self.hparams.task]

    @property
    def split_note(self) -> str:
        """Which split this is, for the report."""
        return "official NSynth splits (nsynth-{train,valid,test}/examples.json), as TFDS nsynth in HARES"

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The hub copy's train / validation / test tables as train / valid / test, labelled by `task`."""
        lacking = [name for name in HUB_SPLITS.values() if name not in tables]
        if lacking:
            raise ValueError(
                f"NSynth hub copy lacks the split(s) {lacking}; it has {list(tables)} (expected "
                f"{list(HUB_SPLITS.values())}, as {self.HUB.path})"
            )
        task, fields = self.hparams.task, FIELDS[self.hparams.task]
        splits = {}
        for split, name in HUB_SPLITS.items():
            where = f"NSynth hub copy[{name}]"
            columns = [hub_column(tables[name], field, where) for field in fields]
            labels = [
                (note_class(task, dict(zip(fields, values, strict=True)), f"{where} row {row}"),)
                for row, values in enumerate(zip(*columns, strict=True))
            ]
            splits[split] = HubSplit(tables[name], range(len(labels)), labels, audio_column, where)
        return splits

    def read_splits(self) -> dict[str, list[Clip]]:
        """The notes of every split's examples.json with their audio; missing audio files are reported."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"NSynth root not found: {self.root}. Download and unpack "
                f"{DOWNLOAD.format(folder='nsynth-<split>')} (train, valid, test) into it"
            )
        splits, sources = {}, {}
        for split, folder in FOLDERS.items():
            examples, audio = self.root / folder / EXAMPLES, self.root / folder / "audio"
            notes = read_examples(examples, self.hparams.task)
            files = set(os.listdir(audio)) if audio.is_dir() else set()
            missing = [name for name, _ in notes if f"{name}.wav" not in files]
            check_missing(missing, len(notes), str(examples), self.on_error, f"looked in {audio}")
            splits[split] = [
                (audio / f"{name}.wav", (label,)) for name, label in notes if f"{name}.wav" in files
            ]
            sources[split] = str(examples)
        check_splits(splits, sources, f"NSynth ({self.hparams.task}, root {self.root})")
        return splits
