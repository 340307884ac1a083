"""`MagnaTagATuneDataModule`: MagnaTagATune music tagging (top-50 tags, multi-label, mAP), as in HARES.

Layout of the MagnaTagATune download (mirg.city.ac.uk: `mp3.zip.001-003` concatenated and unzipped, and
`annotations_final.csv`) under `root` (`magnatagatune/`):

    <root>/annotations_final.csv     tab-separated, every field double-quoted, CRLF line ends; the header
                                     "clip_id", 188 tag names (with spaces, e.g. "no vocals"), "mp3_path";
                                     one row per clip: its id, 0/1 per tag, e.g. "f/<artist>-<album>-...mp3"
    <root>/<0-9, a-f>/<name>.mp3     about 29 s, 16 kHz mono; 25,863 clips

Splits: `split="pons"` (default, canonical) is the split HARES used (its footnote 14:
github.com/jordipons/musicnn-training/tree/master/data), read at commit c7aa67b: `aux/mtt/partition_gt.py`
puts folders 0-b in train, c in valid and d-f in test, and leaves out clips 35644 ("NO FILE"), 55753 and
57881 ("CORRUPTED"); `data/index/mtt/{val,test}_gt_mtt.tsv` are exactly every clip of folder c and of d-f
(1,825 and 5,329 clips, those without a top-50 tag included). `split="directory"` is the same folder split
(Dieleman & Schrauwen's) with every clip of the CSV, the three broken ones included (`on_error="skip"`
leaves out unreadable files; "raise" names them). Both use the top-50 tags of musicnn-training's
`data/index/mtt/output_labels_mtt.txt` (the 50 most frequent tags of the CSV, in its order).

Crops (HARES Appendix A): random 3 s training crops; evaluation averages the non-overlapping 3 s sub-clips
of the whole clip.

Hugging Face: no public copy is read (`confit/magnatagatune` is a loading script around a zip of the mp3s),
so HUB is None. `hub=` reads a copy of your own (in memory, a `save_to_disk` folder or a private hub id):
columns `clip_id`, `mp3_path` (as in the CSV, e.g. `f/<name>.mp3`), the top-50 tag columns (0 / 1) or a
`tags` column (a list of tag names; others than the top 50 are ignored) and `audio` (mp3 decodes with
libsndfile >= 1.1); every split of it is read as one table and split by the same rule from `mp3_path`.
Built from the download:

    import datasets, pandas
    rows = pandas.read_csv(f"{root}/annotations_final.csv", sep="\t", dtype={"clip_id": str})
    rows["audio"] = [f"{root}/{path}" for path in rows["mp3_path"]]
    table = datasets.Dataset.from_pandas(rows).cast_column("audio", datasets.Audio())
    table.push_to_hub(<id>, private=True)  # or table.save_to_disk(<folder>)
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput, HubSplit, hub_column, hub_splits_of, merged_table
from ssl_lightning.data.manifest import OnError

TOP50_TAGS = (
    *("guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano"),
    *("ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing"),
    *("vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal"),
    *("pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice", "new age", "dance", "male voice"),
    *("female vocal", "beats", "harp", "cello", "no voice", "weird", "country", "metal", "female voice"),
    "choral",
)
"""The top-50 tags (column names of annotations_final.csv) in the order of musicnn-training's
`output_labels_mtt.txt`."""
PONS_LEFT_OUT = frozenset({"35644", "55753", "57881"})
"""The clip_ids that musicnn-training's partition_gt.py leaves out (a missing and two corrupted mp3s)."""
FOLDERS = {"train": "0123456789ab", "valid": "c", "test": "def"}
"""The mp3 folders of every split."""
SPLIT_OF = {folder: split for split, folders in FOLDERS.items() for folder in folders}
"""The split of every mp3 folder."""
ANNOTATIONS = "annotations_final.csv"
DOWNLOAD = "https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset"
Split = Literal["pons", "directory"]


@dataclass(frozen=True)
class MTATClip:
    """One row of annotations_final.csv: its clip_id, mp3 path (relative to root) and top-50 tags."""

    clip_id: str
    mp3_path: str
    tags: tuple[str, ...]


def mtat_clip(clip_id: Any, mp3_path: str, values: Mapping[str, Any], where: str) -> MTATClip:
    """The clip of one annotation row (a CSV line or a hub row, named `where`); `values` holds every top-50
    tag's 0/1.

    Raises:
        ValueError: a tag value is not 0/1, or mp3_path is not `<0-9 or a-f>/<name>.mp3`.
    """
    bad = {tag: values[tag] for tag in TOP50_TAGS if str(values[tag]) not in ("0", "1")}
    if bad:
        raise ValueError(f"{where} (clip {clip_id}): tag values must be 0 or 1, got {bad}")
    folder, _, name = mp3_path.partition("/")
    if folder not in SPLIT_OF or not name:
        raise ValueError(f"{where} (clip {clip_id}): mp3_path {mp3_path!r} is not <0-9 or a-f>/<name>.mp3")
    return MTATClip(str(clip_id), mp3_path, tuple(tag for tag in TOP50_TAGS if str(values[tag]) == "1"))


def read_annotations(path: Path) -> list[MTATClip]:
    """The rows of `annotations_final.csv`, with the top-50 tags set to 1 in each.

    Raises:
        FileNotFoundError: no such file (the message says where MagnaTagATune comes from).
        ValueError: the header lacks clip_id, mp3_path or a top-50 tag; or a row (named by its line) has
            the wrong number of fields, a top-50 value other than 0/1, or an mp3_path outside 0-f/.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"MagnaTagATune annotations not found: {path}. Download annotations_final.csv and the mp3 "
            f"archive from {DOWNLOAD} into root"
        )
    with open(path, newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, [])
        lacking = [name for name in ("clip_id", "mp3_path", *TOP50_TAGS) if name not in header]
        if lacking:
            raise ValueError(
                f"{path} lacks the column(s) {lacking}: is it the tab-separated {ANNOTATIONS} of {DOWNLOAD}?"
            )
        clip_id, mp3_path = header.index("clip_id"), header.index("mp3_path")
        columns = {tag: header.index(tag) for tag in TOP50_TAGS}
        clips = []
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ValueError(f"{path} line {line}: {len(row)} fields, the header has {len(header)}")
            values = {tag: row[column] for tag, column in columns.items()}
            clips.append(mtat_clip(row[clip_id], row[mp3_path], values, f"{path} line {line}"))
    if not clips:
        raise ValueError(f"{path} has a header but no clip rows (MagnaTagATune has 25,863); restore it")
    return clips


class MagnaTagATuneDataModule(AudioClassificationDataModule):
    """MagnaTagATune's top-50 tags on the Pons et al. or the directory split; see the module docstring.

    Clips are multi-label (a multi-hot [50]; clips without a top-50 tag are kept, all zeros), served at
    `sample_rate`. CSV rows without an mp3 file are counted and reported in `setup` (raise, or leave them
    out with `on_error="skip"`); an mp3 that does not decode (the empty files of the download) raises
    naming it, or is left out with `on_error="skip"`.

    Args:
        root: `magnatagatune/`, holding annotations_final.csv and the mp3 folders 0-9, a-f.
        split: "pons" (HARES's, canonical) or "directory" (the same folders, no clip left out).
        clip_seconds: evaluation sub-clip length (HARES: 3 s).
        train_seconds: training crop length (HARES: 3 s).
        hub: a copy of your own in `datasets` form instead of `root` (columns in the module docstring; no
            public copy is read); see `AudioClassificationDataModule`.
    """

    classes = TOP50_TAGS
    """The top-50 tags, in musicnn-training's order."""
    label_type = "multi"

    def __init__(
        self,
        root: str | None = None,
        split: Split = "pons",
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
            root, hub, f"the folder of annotations_final.csv and the mp3 folders 0-9, a-f, from {DOWNLOAD}"
        )
        if split not in ("pons", "directory"):
            raise ValueError(f"split must be 'pons' or 'directory', got {split!r}")
        self.save_hyperparameters(ignore=["hub"])

    @property
    def canonical(self) -> bool:
        """True for the Pons et al. split HARES used."""
        return self.hparams.split == "pons"

    @property
    def split_note(self) -> str:
        """Which split this is, for the report."""
        source = "annotations_final.csv" if self.hub is None else "a hub copy's mp3_path"
        if self.canonical:
            return (
                f"Pons et al. split (musicnn-training, as HARES): mp3 folders 0-b / c / d-f of {source} "
                "less clips 35644, 55753, 57881; top-50 tags"
            )
        return (
            f"directory split 0-b / c / d-f of {source} with every clip (not HARES's: it keeps the 3 broken "
            "clips Pons et al. leave out); top-50 tags"
        )

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The rows of every table, split by the folder of `mp3_path` as from root (Pons: less the three)."""
        where = self.hub_where("MagnaTagATune")
        table = merged_table(tables)
        ids, paths = (hub_column(table, column, where) for column in ("clip_id", "mp3_path"))
        if "tags" in table.column_names:
            values = [{tag: int(tag in names) for tag in TOP50_TAGS} for names in map(set, table["tags"])]
        else:
            columns = {tag: hub_column(table, tag, f"{where} (no tags column)") for tag in TOP50_TAGS}
            values = [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)]
        clips = [
            mtat_clip(clip_id, str(path), tags, f"{where} row {row}")
            for row, (clip_id, path, tags) in enumerate(zip(ids, paths, values, strict=True))
        ]
        left_out = PONS_LEFT_OUT if self.canonical else frozenset()
        rows = {split: [] for split in FOLDERS}
        for row, clip in enumerate(clips):
            if clip.clip_id not in left_out:
                rows[SPLIT_OF[clip.mp3_path[0]]].append(row)
        parts = {
            split: (table, selected, [clips[row].tags for row in selected])
            for split, selected in rows.items()
        }
        return hub_splits_of(parts, audio_column, where, f" (mp3 folders {FOLDERS})")

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split by mp3 folder; CSV rows without an mp3 file are reported."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"MagnaTagATune root not found: {self.root}. Download annotations_final.csv and the mp3 "
                f"archive from {DOWNLOAD} and unpack them into it"
            )
        annotations = self.root / ANNOTATIONS
        left_out = PONS_LEFT_OUT if self.canonical else frozenset()
        clips = [clip for clip in read_annotations(annotations) if clip.clip_id not in left_out]
        missing = [clip.mp3_path for clip in clips if not (self.root / clip.mp3_path).is_file()]
        check_missing(missing, len(clips), str(annotations), self.on_error, f"looked in {self.root}/<0-f>/")
        absent = set(missing)
        splits = {
            split: [
                (self.root / clip.mp3_path, clip.tags)
                for clip in clips
                if SPLIT_OF[clip.mp3_path[0]] == split and clip.mp3_path not in absent
            ]
            for split in FOLDERS
        }
        sources = {
            split: f"mp3 folders {list(folders)} of {annotations}" for split, folders in FOLDERS.items()
        }
        check_splits(splits, sources, f"MagnaTagATune (split={self.hparams.split!r}, root {self.root})")
        return splits
