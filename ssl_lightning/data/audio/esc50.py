"""`ESC50DataModule`: ESC-50 (2,000 five-second clips, 50 classes, 5 folds) for one cross-validation fold.

Layout (the GitHub archive karolpiczak/ESC-50, unpacked as `ESC-50-master/`):

    <root>/meta/esc50.csv   columns filename,fold,target,category,esc10,src_file,take (one row per clip)
    <root>/audio/<filename> e.g. 1-100032-A-0.wav: 5 s, 44.1 kHz mono ({fold}-{src_file}-{take}-{target})

The protocol is leave-one-fold-out cross-validation (report the mean accuracy over `fold` = 1..5).
Fragments of one source recording share a fold, so folds never leak recordings into each other.

Hugging Face copy: `ashraq/esc50` (parquet, one `train` split of the 2,000 clips with the CSV's columns
and `audio`), read with `hub="ashraq/esc50"`; the folds come from its `fold` column.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput, HubSource, HubSplit, hub_column
from ssl_lightning.data.manifest import OnError

NUM_FOLDS = 5
META = Path("meta") / "esc50.csv"
REQUIRED_COLUMNS = ("filename", "fold", "target", "category")
DOWNLOAD = "https://github.com/karolpiczak/ESC-50/archive/master.zip"
ValidFold = Literal["next", "test"]


@dataclass(frozen=True)
class ESC50Clip:
    """One row of `meta/esc50.csv`: file name, fold (1-5), class index and class name."""

    filename: str
    fold: int
    target: int
    category: str


def check_esc50_rows(clips: list[ESC50Clip], where: str, first_line: int | None = None) -> tuple[str, ...]:
    """The class names indexed by `target` of `clips` (rows of `where`), after checking folds and targets.
    Messages name the row, or the file line when the first row is at line `first_line`.

    Raises:
        ValueError: there are no rows, a fold is outside 1-5, one target has two category names, or the
            targets do not cover 0..C-1.
    """
    if not clips:
        header = "" if first_line is None else " a header but"
        raise ValueError(
            f"{where} has{header} no clip rows (ESC-50 lists 2,000 clips); restore it from {DOWNLOAD}"
        )
    names: dict[int, str] = {}
    for row, clip in enumerate(clips):
        at = f"row {row}" if first_line is None else f"line {row + first_line}"
        if not 1 <= clip.fold <= NUM_FOLDS:
            raise ValueError(f"{where} {at}: fold {clip.fold} of {clip.filename} is outside 1..{NUM_FOLDS}")
        if names.setdefault(clip.target, clip.category) != clip.category:
            raise ValueError(
                f"{where} {at}: target {clip.target} is {clip.category!r} here but "
                f"{names[clip.target]!r} above"
            )
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{where}: targets must be 0..C-1, got {sorted(names)}")
    return tuple(names[target] for target in range(len(names)))


def read_esc50_meta(csv_path: Path) -> tuple[list[ESC50Clip], tuple[str, ...]]:
    """Rows of `meta/esc50.csv` and the class names indexed by `target`.

    Raises:
        FileNotFoundError: no such file (the message says where ESC-50 comes from).
        ValueError: a required column is missing, there are no rows, a fold or target is not an
            integer, a fold is outside 1-5, one target has two category names, or the targets do not
            cover 0..C-1 (the message names the line).
    """
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"ESC-50 metadata not found: {csv_path}. Pass root= the unpacked ESC-50 archive ({DOWNLOAD}), "
            "the folder that holds meta/esc50.csv and audio/"
        )
    clips = []
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path} lacks column(s) {missing}; its header is {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            try:
                fold, target = int(row["fold"]), int(row["target"])
            except ValueError as error:
                raise ValueError(
                    f"{csv_path} line {line}: fold and target must be integers ({error})"
                ) from None
            clips.append(ESC50Clip(row["filename"], fold, target, row["category"]))
    return clips, check_esc50_rows(clips, str(csv_path), first_line=2)


class ESC50DataModule(AudioClassificationDataModule):
    """ESC-50 with fold `fold` held out as the test split.

    Splits: test = fold `fold`. With `valid_fold="next"` (default; HEAR's split), valid = the next
    fold (fold % 5 + 1) and train = the three others: valid is disjoint from test, so it can select
    models or probe heads. With `valid_fold="test"` (the AST / BEATs fine-tuning protocol), train = the
    four other folds and valid is the test fold itself: use it to watch a fixed schedule, never to
    select on it.

    Clips are single-label, resampled to `sample_rate`; training crops and evaluation sub-clips last
    `clip_seconds` (5 s: whole clips). Missing audio files are counted and reported in `setup`
    (raise, or leave them out with `on_error="skip"`).

    Args:
        root: the unpacked ESC-50 archive (holds `meta/esc50.csv` and `audio/`).
        fold: the held-out test fold, 1..5.
        valid_fold: "next" or "test", see above.
        hub: read the clips from Hugging Face instead of `root` (`"ashraq/esc50"`, or in-memory splits
            with its columns); see `AudioClassificationDataModule`.
        train_seconds: training crop length (None: `clip_seconds`, whole clips).
    """

    HUB = HubSource("ashraq/esc50")

    label_type = "single"
    canonical = True
    """The official folds (HARES reports the mean over the five test folds)."""

    def __init__(
        self,
        root: str | None = None,
        fold: int = 1,
        valid_fold: ValidFold = "next",
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 5.0,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
        train_seconds: float | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds, hub
        )
        self.root = self.source_root(root, hub, f"the unpacked {DOWNLOAD}")
        if fold not in range(1, NUM_FOLDS + 1):
            raise ValueError(f"fold must be one of 1..{NUM_FOLDS} (the held-out test fold), got {fold!r}")
        if valid_fold not in ("next", "test"):
            raise ValueError(f"valid_fold must be 'next' or 'test', got {valid_fold!r}")
        self.save_hyperparameters(ignore=["hub"])
        self._meta: tuple[list[ESC50Clip], tuple[str, ...]] | None = None
        self._tables: dict | None = None

    @property
    def folds(self) -> dict[str, tuple[int, ...]]:
        """The folds of every split."""
        test = self.hparams.fold
        valid = test if self.hparams.valid_fold == "test" else test % NUM_FOLDS + 1
        train = tuple(f for f in range(1, NUM_FOLDS + 1) if f not in (test, valid))
        return {"train": train, "valid": (valid,), "test": (test,)}

    def _read_meta(self) -> tuple[list[ESC50Clip], tuple[str, ...]]:
        if self._meta is None and self.root is None:
            self.setup()  # the hub copy: the rows come with the table
        if self._meta is None:
            if not self.root.is_dir():
                raise FileNotFoundError(
                    f"ESC-50 root not found: {self.root}. Download {DOWNLOAD}, unpack it and pass the "
                    "ESC-50-master folder as root"
                )
            self._meta = read_esc50_meta(self.root / META)
        return self._meta

    @property
    def classes(self) -> tuple[str, ...]:
        """The category names, indexed by `target` (read from meta/esc50.csv)."""
        return self._read_meta()[1]

    @property
    def split_note(self) -> str:
        """Which folds make each split, for reports."""
        folds = ", ".join(f"{split} {list(f)}" for split, f in self.folds.items())
        source = (
            self.root if self.hub is None else f"hub {self.hub if isinstance(self.hub, str) else 'tables'}"
        )
        return f"ESC-50 official folds ({folds}) from {source}"

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The folds of the hub copy's single table (every split of it, concatenated in order)."""
        import datasets

        table = datasets.concatenate_datasets([tables[name] for name in sorted(tables)])
        where = self.hub_where("ESC-50")
        columns = {name: hub_column(table, name, where) for name in REQUIRED_COLUMNS}
        clips = [
            ESC50Clip(str(name), int(fold), int(target), str(category))
            for name, fold, target, category in zip(*columns.values(), strict=True)
        ]
        classes = check_esc50_rows(clips, where)
        self._meta = clips, classes
        return {
            split: HubSplit(
                table,
                rows := [row for row, clip in enumerate(clips) if clip.fold in folds],
                [(classes[clips[row].target],) for row in rows],
                audio_column,
                f"{where}[{split}: folds {list(folds)}]",
            )
            for split, folds in self.folds.items()
        }

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split after the fold assignment; missing audio files are reported."""
        clips, classes = self._read_meta()
        audio = self.root / "audio"
        missing = [clip.filename for clip in clips if not (audio / clip.filename).is_file()]
        check_missing(missing, len(clips), str(self.root / META), self.on_error, f"looked in {audio}")
        absent = set(missing)
        present = [clip for clip in clips if clip.filename not in absent]
        splits = {
            split: [(audio / c.filename, (classes[c.target],)) for c in present if c.fold in folds]
            for split, folds in self.folds.items()
        }
        sources = {split: f"folds {list(folds)} of {self.root / META}" for split, folds in self.folds.items()}
        check_splits(splits, sources, f"ESC-50 (fold={self.hparams.fold}, audio in {audio})")
        return splits
