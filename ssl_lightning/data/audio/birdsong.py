"""`BirdsongDataModule`: bird audio detection (DCASE 2018 Task 3; HARES "Birdsong", 2 classes).

Layout (`root` = a `birdsong/` folder holding the three development corpora, each as its zip unpacks):

    <root>/ff1010bird/wav/<itemid>.wav           + ff1010bird_metadata_2018.csv           (7,690 clips)
    <root>/warblrb10k/wav/<itemid>.wav           + warblrb10k_public_metadata_2018.csv    (8,000 clips)
    <root>/BirdVox-DCASE-20k/wav/<itemid>.wav    + BirdVoxDCASE20k_csvpublic.csv          (20,000 clips)

Each CSV (comma-separated, header `itemid,datasetid,hasbird`) labels its corpus's clips, 10 s of 44.1 kHz
mono, with hasbird 0/1 (classes "no_bird", "bird").

Splits: the DCASE evaluation labels are withheld, and HARES used Tagliasacchi et al.'s split of the
development corpora, which is not public. The library splits every item (a clip: its own group) 80/10/10
into train / valid / test by a hash of `f"{split_seed}:{item}"` (`group_split.py`), so each (datasetid,
hasbird) stratum is split 80/10/10 in expectation and adding or losing clips never moves the others;
`canonical` is False.
`split_file=` reads a list file instead, and `write_split_file` records the split in use.

Hugging Face: no public copy, so HUB is None. `hub=` reads a copy of your own (in memory, a `save_to_disk`
folder or a private hub id): columns `itemid`, `datasetid` (the corpus folder name, as the CSVs have it),
`hasbird` (0 / 1) and `audio`, every split of it read as one table and split by the same item hash (an
item is `<datasetid>/wav/<itemid>.wav`, so the split equals the folder path's). Built from the download:

    import datasets, pandas
    from ssl_lightning.data.audio.birdsong import CORPORA
    rows = pandas.concat([pandas.read_csv(f"{root}/{c}/{csv}", dtype=str) for c, csv in CORPORA.items()])
    rows["audio"] = [f"{root}/{d}/wav/{i}.wav" for d, i in zip(rows["datasetid"], rows["itemid"])]
    table = datasets.Dataset.from_pandas(rows, preserve_index=False).cast_column("audio", datasets.Audio())
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip, check_splits
from ssl_lightning.data.audio.group_split import (
    SPLITS,
    SplitListWriter,
    assigned_clips,
    hash_split,
    read_split_list,
)
from ssl_lightning.data.audio.hub import HubInput, HubSplit, hub_column, hub_splits_of, merged_table
from ssl_lightning.data.manifest import OnError

CORPORA = {
    "ff1010bird": "ff1010bird_metadata_2018.csv",
    "warblrb10k": "warblrb10k_public_metadata_2018.csv",
    "BirdVox-DCASE-20k": "BirdVoxDCASE20k_csvpublic.csv",
}
"""Corpus folder -> its metadata CSV (next to its `wav/` folder)."""
COLUMNS = ("itemid", "datasetid", "hasbird")
CLASSES = ("no_bird", "bird")
"""Indexed by `hasbird`."""
FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}
DOWNLOAD = "https://dcase.community/challenge2018/task-bird-audio-detection"


@dataclass(frozen=True)
class BirdsongClip:
    """One row of a corpus CSV: the corpus folder, `itemid`, `datasetid` and `hasbird` (0 or 1)."""

    corpus: str
    itemid: str
    datasetid: str
    hasbird: int

    @property
    def item(self) -> str:
        """The clip's id: its audio file's path under root, `<corpus>/wav/<itemid>.wav`."""
        return f"{self.corpus}/wav/{self.itemid}.wav"


def birdsong_clip(row: Mapping[str, Any], corpus: str, where: str, seen: set[str]) -> BirdsongClip:
    """The clip of one metadata row (a CSV line or a hub row, named `where`) of `corpus`, added to `seen`.

    Raises:
        ValueError: hasbird is not 0 or 1, or the clip is in `seen` already (listed twice).
    """
    if str(row["hasbird"]) not in ("0", "1"):
        raise ValueError(f"{where}: hasbird must be 0 or 1, got {row['hasbird']!r}")
    clip = BirdsongClip(corpus, str(row["itemid"]), str(row["datasetid"]), int(row["hasbird"]))
    if clip.item in seen:
        raise ValueError(f"{where}: itemid {clip.itemid!r} is listed twice")
    seen.add(clip.item)
    return clip


def read_corpus(root: Path, corpus: str) -> list[BirdsongClip]:
    """The rows of corpus `corpus`'s CSV under `root`.

    Raises:
        FileNotFoundError: the corpus folder or its CSV is missing (the message says where to get it).
        ValueError: a column is missing, there are no rows, or a row's hasbird is not 0/1 or its itemid
            repeats (the message names the line).
    """
    folder, csv_path = root / corpus, root / corpus / CORPORA[corpus]
    if not folder.is_dir():
        raise FileNotFoundError(
            f"Birdsong corpus folder not found: {folder}. Download {corpus} from {DOWNLOAD} and unpack it "
            f"there (wav/ and its CSV), or pass corpora= the corpora you have (of {list(CORPORA)})"
        )
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"Birdsong metadata not found: {csv_path}. Put {CORPORA[corpus]} (from {DOWNLOAD}) next to wav/"
        )
    seen: set[str] = set()
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path} lacks column(s) {missing}; its header is {reader.fieldnames}")
        clips = [
            birdsong_clip(row, corpus, f"{csv_path} line {line}", seen) for line, row in enumerate(reader, 2)
        ]
    if not clips:
        raise ValueError(f"{csv_path} has a header but no clip rows; restore it from {DOWNLOAD}")
    return clips


class BirdsongDataModule(SplitListWriter, AudioClassificationDataModule):
    """Bird audio detection on the DCASE 2018 Task 3 development corpora, split 80/10/10 by item hash.

    Training takes random 1 s crops and evaluation every contiguous 1 s sub-clip (HARES, Appendix A).

    Args:
        root: the `birdsong/` folder of the corpus folders (see the module docstring).
        corpora: the corpus folders to read (default all three; a missing one is an error).
        split_file: a list file (`<split>\t<corpus>/wav/<itemid>.wav` lines) to use instead of the hash
            split, e.g. one written by `write_split_file`.
        split_seed: seeds the hash split only (`seed` seeds the training shuffle), so changing the training
            seed moves no clip between splits.
        hub: a copy of your own in `datasets` form instead of `root` (columns in the module docstring; no
            public copy exists); see `AudioClassificationDataModule`.
    """

    classes = CLASSES
    label_type = "single"
    canonical = False
    """HARES's split (Tagliasacchi et al.) is not public."""

    def __init__(
        self,
        root: str | None = None,
        corpora: Sequence[str] = tuple(CORPORA),
        split_file: str | None = None,
        split_seed: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        train_seconds: float | None = 1.0,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds, hub
        )
        self.root = self.source_root(root, hub, f"the birdsong/ folder of the corpora from {DOWNLOAD}")
        self.keep_split_source(split_file, split_seed)
        unknown = [corpus for corpus in corpora if corpus not in CORPORA]
        if not corpora or unknown or len(set(corpora)) != len(corpora):
            raise ValueError(f"corpora must be distinct names of {list(CORPORA)}, got {list(corpora)}")
        self.save_hyperparameters(ignore=["hub"])
        self.corpora = tuple(corpora)

    @property
    def split_note(self) -> str:
        """Which split is used, from which files, and why it is not HARES's."""
        where = (
            f"read from {self.split_file}"
            if self.split_file is not None
            else f"item hash 80/10/10 (split_seed {self.split_seed}; each hasbird stratum 80/10/10 in "
            "expectation)"
        )
        source = "" if self.hub is None else " of a hub copy"
        return (
            f"Birdsong: corpora {list(self.corpora)}{source} {where}; non-canonical: HARES used Tagliasacchi "
            "et al.'s split of the DCASE 2018 development corpora, which is not public"
        )

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split, after the hash split (or `split_file`); missing audio files are reported."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"Birdsong root not found: {self.root}. Download the corpora from {DOWNLOAD} and pass the "
                f"folder holding {list(self.corpora)} as root"
            )
        clips = [clip for corpus in self.corpora for clip in read_corpus(self.root, corpus)]
        labels = {clip.item: CLASSES[clip.hasbird] for clip in clips}
        if self.split_file is None:
            assignment = {clip.item: hash_split(clip.item, FRACTIONS, self.split_seed) for clip in clips}
            source = f"the item hash (split_seed {self.split_seed}) of the CSVs of {list(self.corpora)}"
        else:
            assignment = read_split_list(self.split_file, labels)
            source = str(self.split_file)
        splits = assigned_clips(assignment, labels, self.root, self.on_error, f"Birdsong ({source})")
        check_splits(splits, dict.fromkeys(SPLITS, source), f"Birdsong (root {self.root})")
        return splits

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The rows of `corpora` (by `datasetid`) of every table, split by the item hash as from root."""
        where = self.hub_where("Birdsong")
        table = merged_table(tables)
        columns = {column: hub_column(table, column, where) for column in COLUMNS}
        clips, seen = [], set()
        for row, values in enumerate(zip(*columns.values(), strict=True)):
            corpus = str(values[COLUMNS.index("datasetid")])
            if corpus not in CORPORA:
                raise ValueError(
                    f"{where} row {row}: datasetid {corpus!r} is none of the corpora {list(CORPORA)}"
                )
            clips.append(
                birdsong_clip(dict(zip(COLUMNS, values, strict=True)), corpus, f"{where} row {row}", seen)
            )
        kept = [row for row, clip in enumerate(clips) if clip.corpus in self.corpora]
        split_of = {row: hash_split(clips[row].item, FRACTIONS, self.split_seed) for row in kept}
        rows = {split: [row for row in kept if split_of[row] == split] for split in SPLITS}
        parts = {
            split: (table, selected, [(CLASSES[clips[row].hasbird],) for row in selected])
            for split, selected in rows.items()
        }
        return hub_splits_of(
            parts, audio_column, where, f" of corpora {list(self.corpora)} ({len(kept)} rows)"
        )
