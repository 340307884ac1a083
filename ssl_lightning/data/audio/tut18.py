"""`TUT18DataModule`: acoustic scene classification (DCASE 2018 Task 1A; HARES "TUT18", 10 scenes).

Layout (`root` = `TUT-urban-acoustic-scenes-2018-development/` as the Zenodo archives unpack):

    <root>/meta.csv                   TAB-separated, header `filename scene_label identifier source_label`,
                                      a row per segment, e.g. `audio/airport-barcelona-0-0-a.wav airport
                                      barcelona-0 a` (identifier: the recording location)
    <root>/audio/<scene>-<city>-<location>-<segment>-a.wav   10 s, 48 kHz, 24-bit binaural stereo
    <root>/evaluation_setup/fold1_train.txt     `audio/<file>.wav<TAB><scene>` lines, no header
    <root>/evaluation_setup/fold1_evaluate.txt  the same; fold1_test.txt (file names only) is not read

Splits: HARES used Tagliasacchi et al.'s split of the development set, which is not public. Here test is
fold1_evaluate and train / valid are fold1_train with 10% of its recording locations (`identifier`) as
valid by a hash of `f"{split_seed}:{identifier}"` (`group_split.py`; the official fold is
location-disjoint, and so is valid); `canonical` is False. `split_file=` reads a list file instead and
`write_split_file` records the split.

Hugging Face copy: `adinmtn/TUT-urban-acoustic-scenes-2018-development` (splits train / test, label column
`scene_label`; how its test relates to fold1 is not documented), read with `hub=` at its default branch.
Test is its `test`; valid is carved from its `train` by location: its `identifier` column when it has one,
else the location in the file name of each audio cell's path (`<scene>-<city>-<location>-...`).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip, check_splits
from ssl_lightning.data.audio.group_split import (
    SPLITS,
    SplitListWriter,
    assigned_clips,
    hash_split,
    read_split_list,
)
from ssl_lightning.data.audio.hub import HubInput, HubSource, HubSplit, hub_column
from ssl_lightning.data.manifest import OnError

CLASSES = (
    *("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall"),
    *("street_pedestrian", "street_traffic", "tram"),
)
META = "meta.csv"
META_COLUMNS = ("filename", "scene_label", "identifier")
TRAIN_LIST = Path("evaluation_setup") / "fold1_train.txt"
EVALUATE_LIST = Path("evaluation_setup") / "fold1_evaluate.txt"
FRACTIONS = {"train": 0.9, "valid": 0.1}
"""Shares of fold1_train's recording locations."""
DOWNLOAD = "https://zenodo.org/record/1228142"


@dataclass(frozen=True)
class TUT18Clip:
    """One row of `meta.csv`: the scene label and the recording location (`identifier`)."""

    scene_label: str
    identifier: str


def read_meta(path: Path) -> dict[str, TUT18Clip]:
    """`filename` -> its row, from the tab-separated `meta.csv`.

    Raises:
        FileNotFoundError: no such file (the message says where TUT18 comes from).
        ValueError: a column is missing, there are no rows, or a scene label is not one of the 10 scenes
            (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"TUT18 metadata not found: {path}. Download and unpack the development archives from {DOWNLOAD} "
            "and pass the TUT-urban-acoustic-scenes-2018-development folder as root"
        )
    rows = {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        missing = [column for column in META_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"{path} lacks column(s) {missing}; its header is {reader.fieldnames} (TAB-separated?)"
            )
        for line, row in enumerate(reader, start=2):
            if row["scene_label"] not in CLASSES:
                raise ValueError(f"{path} line {line}: scene {row['scene_label']!r} is not one of {CLASSES}")
            rows[row["filename"]] = TUT18Clip(row["scene_label"], row["identifier"])
    if not rows:
        raise ValueError(f"{path} has a header but no rows; restore it from {DOWNLOAD}")
    return rows


def read_fold_list(path: Path, meta: dict[str, TUT18Clip]) -> list[str]:
    """The file names of a fold list (`audio/<file>.wav<TAB><scene>` lines, no header).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not two tab-separated fields, or names a file missing from meta.csv or with
            another scene than meta.csv's (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"TUT18 fold list not found: {path}; restore evaluation_setup/ from {DOWNLOAD}"
        )
    names = []
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        fields = text.split("\t")
        if len(fields) != 2:
            raise ValueError(f"{path} line {line}: expected 'audio/<file>.wav<TAB><scene>', got {text!r}")
        name, scene = fields
        if name not in meta or meta[name].scene_label != scene:
            found = "is not in meta.csv" if name not in meta else f"is {meta[name].scene_label!r} in meta.csv"
            raise ValueError(f"{path} line {line}: {name} ({scene}) {found}")
        names.append(name)
    return names


def location_of(name: str, where: str) -> str:
    """The recording location `<city>-<location>` (meta.csv's `identifier`) in a TUT18 file name
    `<scene>-<city>-<location>-<segment>-<device>.wav`, or a ValueError naming `where`."""
    parts = Path(name).stem.split("-")
    if len(parts) != 5:
        raise ValueError(
            f"{where}: {name!r} is not a TUT18 file name <scene>-<city>-<location>-<segment>-a.wav"
        )
    return f"{parts[1]}-{parts[2]}"


class TUT18DataModule(SplitListWriter, AudioClassificationDataModule):
    """TUT Urban Acoustic Scenes 2018: test = fold1_evaluate, valid = 10% of fold1_train's locations.

    Training takes random 5 s crops and evaluation every contiguous 5 s sub-clip (HARES, Appendix A); the
    stereo files are mixed down to mono.

    Args:
        root: the unpacked TUT-urban-acoustic-scenes-2018-development folder (see the module docstring).
        split_file: a list file (`<split>\taudio/<file>.wav` lines) to use instead, e.g. one written by
            `write_split_file` (root only).
        split_seed: seeds the location hash of valid only (`seed` seeds the training shuffle), so changing
            the training seed moves no clip between splits.
        hub: read from Hugging Face instead of `root` (the class's `HUB` id, or in-memory splits `train`
            and `test` with its columns); see `AudioClassificationDataModule`.
    """

    HUB = HubSource("adinmtn/TUT-urban-acoustic-scenes-2018-development")

    classes = CLASSES
    label_type = "single"
    canonical = False
    """HARES's split (Tagliasacchi et al.) is not public."""

    def __init__(
        self,
        root: str | None = None,
        split_file: str | None = None,
        split_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        train_seconds: float | None = 5.0,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds, hub
        )
        self.root = self.source_root(root, hub, f"the unpacked development set from {DOWNLOAD}")
        self.keep_split_source(split_file, split_seed)
        self.save_hyperparameters(ignore=["hub"])
        self._hub_grouping = ""

    @property
    def split_note(self) -> str:
        """Which split is used, from which files, and why it is not HARES's."""
        valid = f"10% of the recording locations by hash (split_seed {self.split_seed})"
        if self.split_file is not None:
            where = f"read from {self.split_file}"
        elif self.root is not None:
            where = f"test = {EVALUATE_LIST}, train/valid = {TRAIN_LIST} with valid {valid}"
        else:
            self.setup()
            where = (
                f"hub copy: test = its test split, valid {valid} of its train split ({self._hub_grouping})"
            )
        return f"TUT18: {where}; non-canonical: HARES used Tagliasacchi et al.'s split, which is not public"

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split from the fold lists and the location hash (or `split_file`); missing audio files
        are reported."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"TUT18 root not found: {self.root}. Download and unpack the development archives from "
                f"{DOWNLOAD} and pass the TUT-urban-acoustic-scenes-2018-development folder as root"
            )
        meta = read_meta(self.root / META)
        if self.split_file is not None:
            assignment = read_split_list(self.split_file, meta)
            sources = dict.fromkeys(SPLITS, str(self.split_file))
        else:
            train, test = (read_fold_list(self.root / name, meta) for name in (TRAIN_LIST, EVALUATE_LIST))
            both = sorted(set(train) & set(test))
            if both:
                raise ValueError(
                    f"{TRAIN_LIST} and {EVALUATE_LIST} under {self.root} share files, e.g. {both[:5]}"
                )
            assignment = {
                name: hash_split(meta[name].identifier, FRACTIONS, self.split_seed) for name in train
            }
            assignment |= dict.fromkeys(test, "test")
            sources = {"train": str(TRAIN_LIST), "valid": str(TRAIN_LIST), "test": str(EVALUATE_LIST)}
        labels = {name: clip.scene_label for name, clip in meta.items()}
        splits = assigned_clips(assignment, labels, self.root, self.on_error, f"TUT18 ({self.root / META})")
        check_splits(splits, sources, f"TUT18 (root {self.root})")
        return splits

    def _hub_locations_of(self, table, audio_column: str, where: str) -> list[str]:
        """The recording location of every row of `table`: its `identifier` column, else the location in
        the file name of its audio cell's path (read from the Arrow column: no audio is loaded)."""
        if "identifier" in table.column_names:
            self._hub_grouping = "locations from its identifier column"
            return [str(location) for location in table["identifier"]]
        import pyarrow.compute

        paths = pyarrow.compute.struct_field(table.with_format("arrow")[audio_column], "path").to_pylist()
        if None in paths:
            raise ValueError(
                f"{where} has no identifier column and its audio cells name no file, so valid cannot be "
                f"carved by recording location; its columns are {table.column_names}. Pass root= instead"
            )
        self._hub_grouping = "locations from the audio file names"
        return [location_of(path, where) for path in paths]

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """Test = the copy's `test`; train / valid = its `train`, valid by location hash."""
        where = self.hub_where("TUT18")
        absent = [split for split in ("train", "test") if split not in tables]
        if absent:
            raise ValueError(f"{where} lacks split(s) {absent}; its splits are {list(tables)}")
        labels = {}
        for split in ("train", "test"):
            labels[split] = [str(label) for label in hub_column(tables[split], "scene_label", where)]
            unknown = sorted(set(labels[split]) - set(CLASSES))
            if unknown:
                raise ValueError(f"{where}[{split}]: scene_label(s) {unknown} are not among {CLASSES}")
        locations = self._hub_locations_of(tables["train"], audio_column, f"{where}[train]")
        train_of = [hash_split(location, FRACTIONS, self.split_seed) for location in locations]
        rows = {s: [row for row, of in enumerate(train_of) if of == s] for s in FRACTIONS}
        rows["test"] = list(range(len(labels["test"])))
        empty = [split for split, selected in rows.items() if not selected]
        if empty:
            raise ValueError(
                f"{where}: split(s) {empty} have no row (valid: {FRACTIONS['valid']:.0%} of train)"
            )
        return {
            split: HubSplit(
                tables[table],
                rows[split],
                [(labels[table][row],) for row in rows[split]],
                audio_column,
                f"{where}[{split}: rows of {table}]",
            )
            for split, table in (("train", "train"), ("valid", "train"), ("test", "test"))
        }
