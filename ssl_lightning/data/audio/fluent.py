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

Hugging Face: no usable copy (`s3prl/superb` config `ic` is a loading script that needs this same manual
download), so `HUB` is None and `root` is required.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput
from ssl_lightning.data.manifest import OnError

SLOTS = ("action", "object", "location")
SPLITS = ("train", "valid", "test")
REQUIRED_COLUMNS = ("path", "speakerId", *SLOTS)
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
        for line, row in enumerate(reader, start=2):
            empty = [column for column in REQUIRED_COLUMNS if not (row[column] or "").strip()]
            if empty:
                raise ValueError(f"{csv_path} line {line}: empty {empty} ({row['path']!r})")
            slots = tuple(row[slot].strip() for slot in SLOTS)
            utterances.append(FluentUtterance(row["path"].strip(), row["speakerId"].strip(), slots))
    return utterances


def slot_values(splits: dict[str, list[FluentUtterance]], root: Path) -> tuple[tuple[str, ...], ...]:
    """The sorted values of every slot in the train split, after checking that valid and test use no other.

    Raises:
        ValueError: a valid or test utterance has a slot value that train lacks (a probe could never
            predict it), naming the value, the slot and the file.
    """
    values = tuple(sorted({u.slots[i] for u in splits["train"]}) for i in range(len(SLOTS)))
    for split in SPLITS[1:]:
        for i, slot in enumerate(SLOTS):
            unknown = sorted({u.slots[i] for u in splits[split]} - set(values[i]))
            if unknown:
                raise ValueError(
                    f"{split_csv(root, split)} has {slot} value(s) {unknown} that "
                    f"{split_csv(root, 'train')} lacks; the classes come from the train split"
                )
    return values


class FluentSpeechCommandsDataModule(AudioClassificationDataModule):
    """Fluent Speech Commands with its official splits, three slot labels per clip (module docstring).

    Training crops last `train_seconds` (HARES: 3 s); evaluation cuts each utterance into contiguous
    sub-clips of `clip_seconds` (3 s), the last one zero-padded. CSV rows without an audio file are
    counted and reported in `setup` (raise, or leave them out with `on_error="skip"`).

    Args:
        root: the unpacked `fluent_speech_commands_dataset` folder (holds `data/` and `wavs/`).
        hub: no Hugging Face copy exists; passing it raises (see the module docstring).
    """

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
            batch_size,
            num_workers,
            sample_rate,
            clip_seconds,
            on_error=on_error,
            seed=seed,
            train_seconds=train_seconds,
            hub=hub,
        )
        if (root is None) == (hub is None):
            raise ValueError(
                "FluentSpeechCommandsDataModule needs exactly one of root= (the unpacked "
                f"fluent_speech_commands_dataset folder, from {DOWNLOAD}) and hub=; it has no Hugging Face "
                f"copy, so pass root. Got root={root!r}, hub={hub!r}"
            )
        self.save_hyperparameters(ignore=["hub"])
        self.root = None if root is None else Path(root).expanduser()
        self._rows: dict[str, list[FluentUtterance]] | None = None
        self._values: tuple[tuple[str, ...], ...] | None = None

    def _read_rows(self) -> tuple[dict[str, list[FluentUtterance]], tuple[tuple[str, ...], ...]]:
        """The utterances of the three CSVs and the slot values (read once)."""
        if self._rows is None:
            if self.root is None:
                self.setup()  # raises: hub= has no reader here
            if not self.root.is_dir():
                raise FileNotFoundError(
                    f"Fluent Speech Commands root not found: {self.root}. Request the data set at "
                    f"{DOWNLOAD}, unpack it and pass the fluent_speech_commands_dataset folder as root"
                )
            rows = {split: read_fluent_csv(split_csv(self.root, split)) for split in SPLITS}
            self._values = slot_values(rows, self.root)
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
    def label_type(self) -> str:
        return "multi"

    @property
    def canonical(self) -> bool:
        """True: the official CSV splits, the ones HARES used."""
        return True

    @property
    def split_note(self) -> str:
        return (
            "official splits: data/{train,valid,test}_data.csv of Fluent Speech Commands (speakers "
            "disjoint), as HARES"
        )

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
