"""`AudioSetDataModule`: AudioSet tagging (527 classes, multi-label, mAP) from the official segment CSVs.

Only metadata is distributed (research.google.com/audioset); the audio is downloaded from YouTube and
is always incomplete (10-20 % of the videos are gone). Layout:

    <root>/class_labels_indices.csv          index,mid,display_name (527 rows, header line)
    <root>/balanced_train_segments.csv       ~22k segments  (AS-20K)
    <root>/unbalanced_train_segments.csv     ~2.04M segments (with balanced: AS-2M)
    <root>/eval_segments.csv                 ~20k segments
    <audio_dir>/**/<file>                    10 s clips, any folder structure, any sample rate

A segment CSV starts with 3 comment lines (`# ...`), then one row per segment:
`YTID, start_seconds, end_seconds, "<mid>,<mid>,..."`. Audio files are matched to segments by YouTube
ID: a file's name (without extension) may be `<YTID>`, `Y<YTID>` (the PANNs / `Y`-prefixed dumps) or
either followed by `_<start>_<end>` (e.g. `Y--PJHxphWEs_30.000_40.000.flac`); extensions .wav, .flac,
.ogg and .mp3 (what libsndfile decodes; convert .m4a / .webm downloads first). Every file under
`audio_dir` (default `<root>/audio`) is indexed once, whatever the sub-folders (e.g. the common
`audio/{bal_train,unbal_train,eval}/`). Segments without a file are counted and reported; pass
`on_error="skip"` to train on what was downloaded.

Hugging Face copy: `agkphysics/AudioSet` (parquet), configs `balanced` (the balanced training segments)
and `unbalanced` (the unbalanced ones only), each with splits train / test (the eval segments) and
columns `video_id`, `audio` (FLAC), `labels` (MID strings), `human_labels`; it holds the segments its
author could download in March 2023. Its labels are plain strings, so the class order (the label index)
comes from `class_labels_indices.csv`: pass its path as `class_index` with `hub=`.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput, HubSource, HubSplit, hub_column
from ssl_lightning.data.manifest import OnError

CLASS_INDEX = "class_labels_indices.csv"
SEGMENTS = {
    "balanced": "balanced_train_segments.csv",
    "unbalanced": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
TRAIN_SPLITS = {"balanced": ("balanced",), "unbalanced": ("unbalanced",), "full": ("balanced", "unbalanced")}
TrainSplit = Literal["balanced", "unbalanced", "full"]
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
FILE_STEM = re.compile(r"Y?(?P<ytid>[A-Za-z0-9_-]{11})(?:_\d+(?:\.\d+)?_\d+(?:\.\d+)?)?")
"""YouTube IDs are 11 characters of [A-Za-z0-9_-]; the full match decides whether a leading Y is a prefix."""
CSV_URL = "http://storage.googleapis.com/us_audioset/youtube_corpus/v1/csv/"
HUB_TRAIN_SPLITS = ("balanced", "unbalanced")
"""The training sets of the hub copy, one config each."""
T = TypeVar("T")


def read_class_index(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(mids, display names) of `class_labels_indices.csv`, in `index` order.

    Raises FileNotFoundError (with the download address) or ValueError (bad header, indices not 0..C-1).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"AudioSet class list not found: {path}; download it from {CSV_URL}{path.name}"
        )
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if [name.strip() for name in reader.fieldnames or []] != ["index", "mid", "display_name"]:
            raise ValueError(f"{path}: expected the header index,mid,display_name, got {reader.fieldnames}")
        rows = [[value.strip() for value in row.values()] for row in reader]
    indices = [row[0] for row in rows]
    if indices != [str(i) for i in range(len(rows))] or not rows:
        raise ValueError(f"{path}: the index column must count 0, 1, ..., got {indices[:5]}...")
    return tuple(row[1] for row in rows), tuple(row[2] for row in rows)


def read_segments(path: Path, mids: set[str]) -> list[tuple[str, tuple[str, ...]]]:
    """(YTID, label mids) of every segment of an AudioSet segment CSV (comment lines skipped).

    Raises FileNotFoundError (with the download address) or ValueError naming the line of a row that
    does not have 4 fields, has no label, or has a mid missing from `mids`.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"AudioSet segment list not found: {path}; download it from {CSV_URL}{path.name}"
        )
    segments = []
    with open(path, newline="") as handle:
        for line, row in enumerate(csv.reader(handle, skipinitialspace=True), start=1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) != 4:
                raise ValueError(
                    f"{path} line {line}: expected 4 fields (YTID, start_seconds, end_seconds, "
                    f'"positive_labels"), got {len(row)}: {row}'
                )
            labels = tuple(label.strip() for label in row[3].split(",") if label.strip())
            unknown = [label for label in labels if label not in mids]
            if unknown or not labels:
                raise ValueError(
                    f"{path} line {line} ({row[0]}): labels {list(labels)} must be one or more mids of "
                    f"{CLASS_INDEX}; unknown: {unknown}"
                )
            segments.append((row[0].strip(), labels))
    return segments


def index_audio(audio_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """Audio files under `audio_dir` (recursively) by YouTube ID, and the names of the files not matched.

    Raises:
        FileNotFoundError: `audio_dir` is not a folder.
        ValueError: two files carry the same YouTube ID (the message names both).
    """
    if not audio_dir.is_dir():
        raise FileNotFoundError(
            f"AudioSet audio folder not found: {audio_dir}; pass audio_dir= the folder of the downloaded "
            "clips"
        )
    found: dict[str, Path] = {}
    ignored: list[str] = []
    for folder, _, names in os.walk(audio_dir):
        for name in names:
            stem, extension = os.path.splitext(name)
            match = FILE_STEM.fullmatch(stem) if extension.lower() in AUDIO_EXTENSIONS else None
            if match is None:
                ignored.append(name)
                continue
            path = Path(folder) / name
            previous = found.setdefault(match["ytid"], path)
            if previous != path:
                raise ValueError(
                    f"two audio files for YouTube ID {match['ytid']}: {previous} and {path}; keep one"
                )
    return found, ignored


class AudioSetDataModule(AudioClassificationDataModule):
    """AudioSet: multi-label batches (`label` float32 multi-hot [B, 527]) of the chosen training set.

    Splits: train = the balanced (AS-20K), unbalanced, or both ("full", AS-2M) training segments; test
    = the eval segments. valid: with `valid_fraction=0` (default) the eval segments, as in the AST /
    BEATs fine-tuning (a fixed schedule, mAP watched on eval); with `valid_fraction > 0`, that share of
    the training clips (seeded by `seed`), held out of train, for selecting models or probe heads.

    Training crops last `train_seconds` (default `clip_seconds`) and evaluation sub-clips
    `clip_seconds` (10 s: whole clips). With `weighted_sampling`, training clips are drawn with weight =
    sum over their labels of 1 / label count (AST / BEATs AS-2M; see `ssl_lightning.data.sampling`);
    each DDP rank draws its own share.

    Args:
        root: folder of the CSVs (`class_labels_indices.csv` and the segment lists).
        audio_dir: folder of the audio files, searched recursively (relative paths start at `root`).
        train_split: "balanced", "unbalanced" or "full" (from the hub: "balanced" or "unbalanced", its
            configs).
        valid_fraction: share of the training clips held out as valid (0: valid is the eval set).
        class_index: path of `class_labels_indices.csv` (default: the one in `root`; required with `hub`).
        on_error: "raise" when segments lack audio (or a file is unreadable), or "skip" them with a
            warning that counts them.
        hub: read the clips from Hugging Face instead (`"agkphysics/AudioSet"`, whose config follows
            `train_split`, or in-memory train / test tables with its columns).
    """

    HUB = HubSource("agkphysics/AudioSet", name="balanced")

    label_type = "multi"

    def __init__(
        self,
        root: str | None = None,
        audio_dir: str = "audio",
        train_split: TrainSplit = "balanced",
        weighted_sampling: bool = False,
        valid_fraction: float = 0.0,
        class_index: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 10.0,
        train_seconds: float | None = None,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        if train_split in HUB_TRAIN_SPLITS and hub == self.HUB.path:
            hub = replace(self.HUB, name=train_split)
        super().__init__(
            batch_size,
            num_workers,
            sample_rate,
            clip_seconds,
            on_error,
            seed,
            train_seconds,
            hub,
            weighted_sampling,
        )
        self.root = self.source_root(root, hub, f"the folder of the segment CSVs, {CSV_URL}")
        if train_split not in TRAIN_SPLITS:
            raise ValueError(f"train_split must be one of {list(TRAIN_SPLITS)}, got {train_split!r}")
        if hub is not None and train_split not in HUB_TRAIN_SPLITS:
            raise ValueError(
                f"{self.HUB.path} has a config per training set {list(HUB_TRAIN_SPLITS)}, none of both: pass "
                f"train_split='balanced' or 'unbalanced' with hub=, or root= for train_split={train_split!r}"
            )
        if hub is not None and class_index is None:
            raise ValueError(
                f"hub= needs class_index= the path of {CLASS_INDEX} ({CSV_URL}{CLASS_INDEX}): the hub copy's "
                "labels are MID strings, and that file gives the classes and their order"
            )
        if not 0 <= valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie in [0, 1), got {valid_fraction!r}")
        self.save_hyperparameters(ignore=["hub"])
        self.audio_dir = None if root is None else self.root / Path(audio_dir).expanduser()
        self.class_index = self.root / CLASS_INDEX if class_index is None else Path(class_index).expanduser()
        self._class_index: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._coverage: dict[str, tuple[int, int]] = {}

    def _classes(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._class_index is None:
            if self.root is not None and not self.root.is_dir():
                raise FileNotFoundError(
                    f"AudioSet root not found: {self.root}; it must hold {CLASS_INDEX} and the segment "
                    f"CSVs ({CSV_URL})"
                )
            self._class_index = read_class_index(self.class_index)
        return self._class_index

    @property
    def classes(self) -> tuple[str, ...]:
        """Display names of the classes, in `class_labels_indices.csv` order."""
        return self._classes()[1]

    @property
    def mids(self) -> tuple[str, ...]:
        """Freebase machine ids (`/m/09x0r`) of the classes, in the same order."""
        return self._classes()[0]

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.mids

    @property
    def canonical(self) -> bool:
        """Whether train / test are HARES's: the official balanced + unbalanced / eval segment lists (the
        audio present of them); the hub copy holds one training set and fewer segments."""
        return self.hub is None and self.hparams.train_split == "full"

    @property
    def split_note(self) -> str:
        """One line for a report: the segment lists, the share with audio, and the valid rule."""
        self.setup()
        valid = (
            "valid = test"
            if self.hparams.valid_fraction == 0
            else f"valid = {self.hparams.valid_fraction:g} of train held out (seed {self.seed})"
        )
        if self.hub is not None:
            rows = ", ".join(f"{part} {present}" for part, (present, _) in self._coverage.items())
            return (
                f"AudioSet {self.hparams.train_split} train / eval test from the hub copy ({rows} rows: the "
                f"segments downloaded in March 2023); {valid}; not HARES's (balanced + unbalanced lists)"
            )
        counts = ", ".join(f"{part} {present}/{total}" for part, (present, total) in self._coverage.items())
        note = (
            f"AudioSet {self.hparams.train_split} train / eval test, segments with audio: {counts}; {valid}"
        )
        return note if self.canonical else f"{note}; not HARES's: it trains on balanced + unbalanced ('full')"

    def _resolve(self, part: str, files: dict[str, Path], ignored: list[str]) -> list[Clip]:
        """The clips of one segment CSV that have an audio file; the missing ones are reported."""
        path = self.root / SEGMENTS[part]
        segments = read_segments(path, set(self.mids))
        missing = [ytid for ytid, _ in segments if ytid not in files]
        hint = (
            f"looked for <YTID>, Y<YTID> or either + _<start>_<end>, with extension "
            f"{'/'.join(AUDIO_EXTENSIONS)}, under {self.audio_dir}: {len(files)} such files, "
            f"{len(ignored)} other files" + (f" such as {ignored[0]}" if ignored else "")
        )
        check_missing(missing, len(segments), str(path), self.on_error, hint)
        self._coverage[part] = (len(segments) - len(missing), len(segments))
        return [(files[ytid], labels) for ytid, labels in segments if ytid in files]

    def _with_valid(
        self, train: T, test: T, size: int, subset: Callable[[T, Sequence[int]], T]
    ) -> dict[str, T]:
        """The splits, valid after the class docstring's rule: `test`, or `valid_fraction` of the `size`
        training clips (a permutation seeded by `seed`; `subset` takes clips by position, in order)."""
        if self.hparams.valid_fraction == 0:
            return {"train": train, "valid": test, "test": test}
        held_out = np.zeros(size, dtype=bool)
        num_valid = max(1, round(self.hparams.valid_fraction * size))
        held_out[np.random.default_rng(self.seed).permutation(size)[:num_valid]] = True
        return {
            "train": subset(train, np.flatnonzero(~held_out)),
            "valid": subset(train, np.flatnonzero(held_out)),
            "test": test,
        }

    def read_splits(self) -> dict[str, list[Clip]]:
        """Train / valid / test clips from the segment CSVs and the audio index."""
        self._classes()
        files, ignored = index_audio(self.audio_dir)
        train = [
            clip
            for part in TRAIN_SPLITS[self.hparams.train_split]
            for clip in self._resolve(part, files, ignored)
        ]
        test = self._resolve("eval", files, ignored)
        csvs = [str(self.root / SEGMENTS[part]) for part in TRAIN_SPLITS[self.hparams.train_split]]
        sources = {"train": " + ".join(csvs), "test": str(self.root / SEGMENTS["eval"])}
        check_splits({"train": train, "test": test}, sources, f"AudioSet (audio in {self.audio_dir})")
        return self._with_valid(train, test, len(train), lambda clips, kept: [clips[i] for i in kept])

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The hub copy's train and test tables, labelled by the MIDs of their `labels` column."""
        lacking = [name for name in ("train", "test") if name not in tables]
        if lacking:
            raise ValueError(f"AudioSet hub tables lack split(s) {lacking}; they have {list(tables)}")
        known = set(self.mids)
        splits = {}
        for name in ("train", "test"):
            where = f"AudioSet hub copy [{name}]"
            labels = [tuple(mids) for mids in hub_column(tables[name], "labels", where)]
            for row, mids in enumerate(labels):
                if not mids or not known.issuperset(mids):
                    raise ValueError(
                        f"{where} row {row}: labels {list(mids)} must be MIDs of {self.class_index} "
                        f"(unknown: {sorted(set(mids) - known)})"
                    )
            splits[name] = HubSplit(tables[name], range(len(labels)), labels, audio_column, where)
            self._coverage[name] = (len(labels), len(labels))
        return self._with_valid(splits["train"], splits["test"], len(splits["train"].rows), _hub_subset)


def _hub_subset(split: HubSplit, kept: Sequence[int]) -> HubSplit:
    """The rows of `split` at positions `kept`."""
    return HubSplit(
        split.table,
        [split.rows[i] for i in kept],
        [split.labels[i] for i in kept],
        split.audio_column,
        split.where,
    )
