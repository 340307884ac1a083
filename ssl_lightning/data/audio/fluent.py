"""`FluentSpeechCommandsDataModule`: Fluent Speech Commands spoken intents (action, object, location slots).

Layout (`fluent_speech_commands_dataset/`, from fluent.ai's request form):

    <root>/data/{train,valid,test}_data.csv      comma-separated, quoted where needed; columns: an unnamed
                                                 index, path, speakerId, transcription, action, object,
                                                 location
    <root>/wavs/speakers/<speakerId>/<uuid>.wav  16 kHz mono, a few seconds (`path` is relative to root)

The official splits (23,132 / 3,118 / 3,793 utterances, speakers disjoint) are the ones HARES uses. HARES
predicts the three slots with three softmax heads and counts an utterance right only when all three are
(31-way intent accuracy). Here a clip is multi-label with one class per slot, named `action=<value>`,
`object=<value>` and `location=<value>`: `classes` lists every action, then every object, then every
location (values sorted within a slot), and `slot_sizes` gives the three group sizes ((6, 14, 4) on the
real data) for a per-slot softmax probe and its all-slots accuracy.

Hugging Face: no public copy (`s3prl/superb` config `ic` is a loading script that needs this same manual
download), so `HUB` is None. `hub=` reads a copy of your own (in memory, a `save_to_disk` folder or a
private hub id): splits `train`, `valid` (or `validation`) and `test`, each with the CSV's columns `path`,
`speakerId`, `action`, `object`, `location` (`transcription` is not read) and an `audio` column. Built from
the download:

    import datasets
    files = {split: f"{root}/data/{split}_data.csv" for split in ("train", "valid", "test")}
    tables = datasets.load_dataset("csv", data_files=files)
    tables = tables.map(lambda row: {"audio": f"{root}/{row['path']}"})
    tables = tables.cast_column("audio", datasets.Audio())  # then .push_to_hub(<id>, private=True)

The hub splits are taken as the official ones; `canonical` is True only when their sizes are the official
23,132 / 3,118 / 3,793.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput, HubSplit, hub_column, hub_split_tables, hub_splits_of
from ssl_lightning.data.manifest import OnError

SLOTS = ("action", "object", "location")
SPLITS = ("train", "valid", "test")
REQUIRED_COLUMNS = ("path", "speakerId", *SLOTS)
OFFICIAL_SIZES = {"train": 23132, "valid": 3118, "test": 3793}
DOWNLOAD = "https://fluent.ai/research/fluent-speech-commands/ (request form)"


@dataclass(frozen=True)
class FluentUtterance:
    """One row of a `data/<split>_data.csv`: wav path relative to root, speaker and the three slot values."""

    path: str
    speaker: str
    slots: tuple[str, str, str]

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names of the three slots: `("action=<value>", "object=<value>", "location=<value>")`."""
        return tuple(f"{slot}={value}" for slot, value in zip(SLOTS, self.slots, strict=True))


def fluent_utterance(row: Mapping[str, Any], where: str) -> FluentUtterance:
    """The utterance of one row (a CSV line or a hub row; `where` names it in messages).

    Raises:
        ValueError: the path, speakerId or a slot is empty.
    """
    values = {column: "" if row[column] is None else str(row[column]).strip() for column in REQUIRED_COLUMNS}
    empty = [column for column, value in values.items() if not value]
    if empty:
        raise ValueError(f"{where}: empty {empty} ({values['path']!r})")
    return FluentUtterance(values["path"], values["speakerId"], tuple(values[slot] for slot in SLOTS))


def split_csv(root: Path, split: str) -> Path:
    """The CSV that lists `split`: `<root>/data/<split>_data.csv`."""
    return root / "data" / f"{split}_data.csv"


def read_fluent_csv(csv_path: Path) -> list[FluentUtterance]:
    """The utterances of one split's CSV.

    Raises:
        FileNotFoundError: no such file (the message says where the data set comes from).
        ValueError: a required column is missing, or a row has an empty path or slot (naming the line).
    """
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"Fluent Speech Commands split list not found: {csv_path}. Pass root= the unpacked "
            f"fluent_speech_commands_dataset folder (holding data/ and wavs/), from {DOWNLOAD}"
        )
    utterances = []
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path} lacks column(s) {missing}; its header is {reader.fieldnames}")
        utterances = [fluent_utterance(row, f"{csv_path} line {line}") for line, row in enumerate(reader, 2)]
    return utterances


def slot_values(
    splits: dict[str, list[FluentUtterance]], sources: Mapping[str, str]
) -> tuple[tuple[str, ...], ...]:
    """The sorted values of every slot in the train split, after checking that valid and test use no other.

    Raises:
        ValueError: a valid or test utterance has a slot value that train lacks (a probe could never
            predict it), naming the value, the slot and the split's source (`sources[split]`).
    """
    values = tuple(sorted({u.slots[i] for u in splits["train"]}) for i in range(len(SLOTS)))
    for split in SPLITS[1:]:
        for i, slot in enumerate(SLOTS):
            unknown = sorted({u.slots[i] for u in splits[split]} - set(values[i]))
            if unknown:
                raise ValueError(
                    f"{sources[split]} has {slot} value(s) {unknown} that {sources['train']} lacks; the "
                    "classes come from the train split"
                )
    return values


class FluentSpeechCommandsDataModule(AudioClassificationDataModule):
    """Fluent Speech Commands with its official splits, three slot labels per clip (module docstring).

    Training crops last `train_seconds` (HARES: 3 s); evaluation cuts each utterance into contiguous
    sub-clips of `clip_seconds` (3 s), the last one zero-padded. CSV rows without an audio file are
    counted and reported in `setup` (raise, or leave them out with `on_error="skip"`).

    Args:
        root: the unpacked `fluent_speech_commands_dataset` folder (holds `data/` and `wavs/`).
        hub: a copy of your own in `datasets` form instead of `root` (splits and columns in the module
            docstring; no public copy exists); see `AudioClassificationDataModule`.
    """

    label_type = "multi"

    def __init__(
        self,
        root: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 3.0,
        train_seconds: float | None = 3.0,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds, hub
        )
        self.root = self.source_root(
            root, hub, f"the unpacked fluent_speech_commands_dataset folder, from {DOWNLOAD}"
        )
        self.save_hyperparameters(ignore=["hub"])
        self._rows: dict[str, list[FluentUtterance]] | None = None
        self._values: tuple[tuple[str, ...], ...] | None = None

    def _read_rows(self) -> tuple[dict[str, list[FluentUtterance]], tuple[tuple[str, ...], ...]]:
        """The utterances of the three CSVs (or hub splits) and the slot values (read once)."""
        if self._rows is None and self.root is None:
            self.setup()  # the hub copy: the rows come with the tables
        if self._rows is None:
            if not self.root.is_dir():
                raise FileNotFoundError(
                    f"Fluent Speech Commands root not found: {self.root}. Request the data set at "
                    f"{DOWNLOAD}, unpack it and pass the fluent_speech_commands_dataset folder as root"
                )
            rows = {split: read_fluent_csv(split_csv(self.root, split)) for split in SPLITS}
            self._values = slot_values(rows, {split: str(split_csv(self.root, split)) for split in SPLITS})
            self._rows = rows
        return self._rows, self._values

    @property
    def classes(self) -> tuple[str, ...]:
        """`action=<value>` for every action, then every object, then every location (sorted in a slot)."""
        values = self._read_rows()[1]
        return tuple(f"{slot}={value}" for slot, names in zip(SLOTS, values, strict=True) for value in names)

    @property
    def slot_sizes(self) -> tuple[int, ...]:
        """How many classes each slot has, in `classes` order (action, object, location)."""
        return tuple(len(values) for values in self._read_rows()[1])

    @property
    def canonical(self) -> bool:
        """True for the official CSV splits, the ones HARES used: from root, or hub splits of their sizes."""
        if self.root is not None:
            return True
        return {split: len(rows) for split, rows in self._read_rows()[0].items()} == OFFICIAL_SIZES

    @property
    def split_note(self) -> str:
        if self.root is not None:
            return (
                "official splits: data/{train,valid,test}_data.csv of Fluent Speech Commands (speakers "
                "disjoint), as HARES"
            )
        sizes = " / ".join(str(len(rows)) for rows in self._read_rows()[0].values())
        official = (
            "the official sizes, as HARES" if self.canonical else "not the official 23132 / 3118 / 3793"
        )
        return f"Fluent Speech Commands: the train / valid / test splits of a hub copy ({sizes}: {official})"

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The copy's train / valid (or validation) / test tables, rows in order, labelled as the CSVs."""
        where = self.hub_where("Fluent Speech Commands")
        named = hub_split_tables(tables, where)
        if named is None:
            raise ValueError(
                f"{where} must have the splits train, valid (or validation) and test; it has {list(tables)}"
            )
        rows = {}
        for split, table in named.items():
            columns = {column: hub_column(table, column, f"{where}[{split}]") for column in REQUIRED_COLUMNS}
            rows[split] = [
                fluent_utterance(dict(zip(columns, values, strict=True)), f"{where}[{split}] row {row}")
                for row, values in enumerate(zip(*columns.values(), strict=True))
            ]
        self._values = slot_values(rows, {split: f"{where}[{split}]" for split in SPLITS})
        self._rows = rows
        parts = {
            split: (table, range(len(rows[split])), [u.labels for u in rows[split]])
            for split, table in named.items()
        }
        return hub_splits_of(parts, audio_column, where)

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split in CSV order, labelled with their three slots; missing audio is reported."""
        rows = self._read_rows()[0]
        splits = {}
        for split, utterances in rows.items():
            missing = [u.path for u in utterances if not (self.root / u.path).is_file()]
            where = str(split_csv(self.root, split))
            check_missing(missing, len(utterances), where, self.on_error, f"paths relative to {self.root}")
            absent = set(missing)
            splits[split] = [(self.root / u.path, u.labels) for u in utterances if u.path not in absent]
        sources = {split: str(split_csv(self.root, split)) for split in SPLITS}
        check_splits(splits, sources, "Fluent Speech Commands")
        return splits
