"""`BirdsongDataModule`: bird audio detection (DCASE 2018 Task 3; HARES "Birdsong", 2 classes), and the
seeded group-aware hash split and split list files that the HARES datamodules without public splits share.

Layout (`root` = a `birdsong/` folder holding the three development corpora, each as its zip unpacks):

    <root>/ff1010bird/wav/<itemid>.wav           + ff1010bird_metadata_2018.csv           (7,690 clips)
    <root>/warblrb10k/wav/<itemid>.wav           + warblrb10k_public_metadata_2018.csv    (8,000 clips)
    <root>/BirdVox-DCASE-20k/wav/<itemid>.wav    + BirdVoxDCASE20k_csvpublic.csv          (20,000 clips)

Each CSV (comma-separated, header `itemid,datasetid,hasbird`) labels its corpus's clips, 10 s of 44.1 kHz
mono, with hasbird 0/1 (classes "no_bird", "bird").

Splits: the DCASE evaluation labels are withheld, and HARES used Tagliasacchi et al.'s split of the
development corpora, which is not public. The library splits every item (a clip: its own group) 80/10/10
into train / valid / test by a hash of `f"{seed}:{item}"`, so each (datasetid, hasbird) stratum is split
80/10/10 in expectation and adding or losing clips never moves the others; `canonical` is False.
`split_file=` reads a list file instead, and `write_split_file` records the split in use.

No Hugging Face copy exists: HUB is None (`hub=` raises).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput, HubSplit
from ssl_lightning.data.manifest import OnError

SPLITS = ("train", "valid", "test")
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


def hash_fraction(seed: int, group: str) -> float:
    """Where `group` falls in [0, 1): the first 8 bytes of sha256(f"{seed}:{group}") over 2**64, the same on
    every machine and run (unlike `hash()`) and independent of every other group."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(group: str, fractions: Mapping[str, float], seed: int) -> str:
    """The split of `group`: the first of `fractions` (split -> share, in order, summing to 1) whose
    cumulative share exceeds `hash_fraction(seed, group)`."""
    position, names = hash_fraction(seed, group), list(fractions)
    edges = accumulate(fractions.values())
    return next((name for name, edge in zip(names, edges, strict=True) if position < edge), names[-1])


def read_split_list(path: Path, items: Collection[str]) -> dict[str, str]:
    """Item id -> split, read from the list file `path` (`<split>\t<item id>` per line, ids as `items`
    names them). Items the file does not list are left out of every split.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not `<split>\t<item id>`, names another split than train/valid/test, an item
            not in `items`, or an item listed before (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"split file not found: {path}; write one with write_split_file(path) or pass split_file=None"
        )
    assignment: dict[str, str] = {}
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        fields = text.split("\t")
        if len(fields) != 2 or fields[0] not in SPLITS:
            raise ValueError(f"{path} line {line}: expected '<split>\\t<item id>' with split in {SPLITS}")
        split, item = fields
        if item not in items:
            raise ValueError(f"{path} line {line}: {item!r} is not an item of the data set read from root")
        if item in assignment:
            raise ValueError(f"{path} line {line}: {item!r} is listed twice")
        assignment[item] = split
    return assignment


def write_split_list(
    path: str | Path, splits: Mapping[str, Sequence[Clip] | HubSplit], root: Path | None
) -> None:
    """Write `splits` as a list file: `<split>\t<item id>` lines, sorted, where the item id is the clip's
    path under `root` (what `read_split_list` reads back).

    Raises:
        ValueError: the splits come from a hub copy (no files under a root to name).
    """
    if root is None or any(isinstance(clips, HubSplit) for clips in splits.values()):
        raise ValueError("a split file names audio files under root=; the hub split is set by seed= alone")
    lines = sorted(
        f"{split}\t{audio.relative_to(root).as_posix()}"
        for split, clips in splits.items()
        for audio, _ in clips
    )
    Path(path).write_text("".join(f"{line}\n" for line in lines))


def assigned_clips(
    assignment: Mapping[str, str], labels: Mapping[str, str], root: Path, on_error: OnError, where: str
) -> dict[str, list[Clip]]:
    """The clips of every split, in the order of `labels` (item id, a path under `root` -> label name), the
    split of each from `assignment` (items it lacks are left out); items whose audio is missing are
    reported (`check_missing`, as from `where`) and left out. The order does not depend on `assignment`'s,
    so a split read back from a split file serves its clips as the split that wrote it."""
    missing = [item for item in assignment if not (root / item).is_file()]
    check_missing(missing, len(assignment), where, on_error, f"looked under {root}")
    absent = set(missing)
    return {
        split: [
            (root / item, (labels[item],))
            for item in labels
            if assignment.get(item) == split and item not in absent
        ]
        for split in SPLITS
    }


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
    clips, seen = [], set()
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{csv_path} lacks column(s) {missing}; its header is {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            if row["hasbird"] not in ("0", "1"):
                raise ValueError(f"{csv_path} line {line}: hasbird must be 0 or 1, got {row['hasbird']!r}")
            if row["itemid"] in seen:
                raise ValueError(f"{csv_path} line {line}: itemid {row['itemid']!r} is listed twice")
            seen.add(row["itemid"])
            clips.append(BirdsongClip(corpus, row["itemid"], row["datasetid"], int(row["hasbird"])))
    if not clips:
        raise ValueError(f"{csv_path} has a header but no clip rows; restore it from {DOWNLOAD}")
    return clips


class BirdsongDataModule(AudioClassificationDataModule):
    """Bird audio detection on the DCASE 2018 Task 3 development corpora, split 80/10/10 by item hash.

    Training takes random 1 s crops and evaluation every contiguous 1 s sub-clip (HARES, Appendix A).

    Args:
        root: the `birdsong/` folder of the corpus folders (see the module docstring).
        corpora: the corpus folders to read (default all three; a missing one is an error).
        split_file: a list file (`<split>\t<corpus>/wav/<itemid>.wav` lines) to use instead of the hash
            split, e.g. one written by `write_split_file`.
        hub: not available (no Hugging Face copy); accepted for the shared signature.
    """

    def __init__(
        self,
        root: str | None = None,
        corpora: Sequence[str] = tuple(CORPORA),
        split_file: str | None = None,
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
                f"BirdsongDataModule needs exactly one of root= (the birdsong/ folder of the corpora from "
                f"{DOWNLOAD}) and hub= (none exists); got root={root!r}, hub={hub!r}"
            )
        unknown = [corpus for corpus in corpora if corpus not in CORPORA]
        if not corpora or unknown or len(set(corpora)) != len(corpora):
            raise ValueError(f"corpora must be distinct names of {list(CORPORA)}, got {list(corpora)}")
        self.save_hyperparameters(ignore=["hub"])
        self.root = None if root is None else Path(root).expanduser()
        self.corpora = tuple(corpora)
        self.split_file = None if split_file is None else Path(split_file).expanduser()

    @property
    def classes(self) -> tuple[str, ...]:
        return CLASSES

    @property
    def label_type(self) -> str:
        return "single"

    @property
    def canonical(self) -> bool:
        """False: HARES's split (Tagliasacchi et al.) is not public."""
        return False

    @property
    def split_note(self) -> str:
        """Which split is used, from which files, and why it is not HARES's."""
        where = (
            f"read from {self.split_file}"
            if self.split_file is not None
            else f"item hash 80/10/10 (seed {self.seed}, each hasbird stratum 80/10/10 in expectation)"
        )
        return (
            f"Birdsong: corpora {list(self.corpora)} {where}; non-canonical: HARES used Tagliasacchi "
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
            assignment = {clip.item: hash_split(clip.item, FRACTIONS, self.seed) for clip in clips}
            source = f"the item hash (seed {self.seed}) of the CSVs of {list(self.corpora)}"
        else:
            assignment = read_split_list(self.split_file, labels)
            source = str(self.split_file)
        splits = assigned_clips(assignment, labels, self.root, self.on_error, f"Birdsong ({source})")
        check_splits(splits, dict.fromkeys(SPLITS, source), f"Birdsong (root {self.root})")
        return splits

    def write_split_file(self, path: str | Path) -> None:
        """Write the split in use (after `setup`) as a list file to ship or record it; `split_file=` reads
        it back."""
        self.setup()
        write_split_list(path, self._splits, self.root)
