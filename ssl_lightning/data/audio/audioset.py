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
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path
from typing import Literal

import numpy as np

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
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

    Training crops and evaluation sub-clips last `clip_seconds` (10 s: whole clips). With
    `weighted_sampling`, training clips are drawn with weight = sum over their labels of 1 / label
    count (AST / BEATs AS-2M; see `ssl_lightning.data.sampling`); each DDP rank draws its own share.

    Args:
        root: folder of the CSVs (`class_labels_indices.csv` and the segment lists).
        audio_dir: folder of the audio files, searched recursively (relative paths start at `root`).
        train_split: "balanced", "unbalanced" or "full".
        valid_fraction: share of the training clips held out as valid (0: valid is the eval set).
        on_error: "raise" when segments lack audio (or a file is unreadable), or "skip" them with a
            warning that counts them.
    """

    def __init__(
        self,
        root: str,
        audio_dir: str = "audio",
        train_split: TrainSplit = "balanced",
        weighted_sampling: bool = False,
        valid_fraction: float = 0.0,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 10.0,
        on_error: OnError = "raise",
        seed: int = 0,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, weighted_sampling
        )
        if train_split not in TRAIN_SPLITS:
            raise ValueError(f"train_split must be one of {list(TRAIN_SPLITS)}, got {train_split!r}")
        if not 0 <= valid_fraction < 1:
            raise ValueError(f"valid_fraction must lie in [0, 1), got {valid_fraction!r}")
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        self.audio_dir = self.root / Path(audio_dir).expanduser()
        self._class_index: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def _classes(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if self._class_index is None:
            if not self.root.is_dir():
                raise FileNotFoundError(
                    f"AudioSet root not found: {self.root}; it must hold {CLASS_INDEX} and the segment "
                    f"CSVs ({CSV_URL})"
                )
            self._class_index = read_class_index(self.root / CLASS_INDEX)
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
    def label_type(self) -> str:
        return "multi"

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
        return [(files[ytid], labels) for ytid, labels in segments if ytid in files]

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
        if self.hparams.valid_fraction == 0:
            return {"train": train, "valid": test, "test": test}
        num_valid = max(1, round(self.hparams.valid_fraction * len(train)))
        held_out = np.zeros(len(train), dtype=bool)
        held_out[np.random.default_rng(self.seed).permutation(len(train))[:num_valid]] = True
        return {
            "train": [clip for clip, out in zip(train, held_out, strict=True) if not out],
            "valid": [clip for clip, out in zip(train, held_out, strict=True) if out],
            "test": test,
        }
