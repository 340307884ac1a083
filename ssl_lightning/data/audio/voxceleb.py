"""`VoxCeleb1DataModule`: VoxCeleb1 speaker identification (1,251 speakers, closed set).

Layout (`voxceleb1/`: the dev archive `vox1_dev_wav_parta{a..d}` and `vox1_test_wav.zip` unpacked into one
folder, plus the identification split list):

    <root>/wav/<speaker>/<youtube id>/<nnnnn>.wav   16 kHz mono, 4 s and longer; speaker like id10001
    <root>/iden_split.txt                           `<1|2|3> <speaker>/<youtube id>/<nnnnn>.wav` a line:
                                                    1 train, 2 valid, 3 test (138,361 / 6,904 / 8,251)

The splits are the official identification ones, which HARES uses through TFDS `voxceleb` (every speaker is
in all three splits). Classes are the speaker ids of `iden_split.txt`, sorted (TFDS labels int(digits)
with an unused label 0; the sorted order is the same, without the gap). TFDS skips listed files that are
absent; here they are reported (raise, or leave them out with `on_error="skip"`).

Hugging Face: no public copy with audio (`yangwang825/vox1-iden-full` is metadata only, `s3prl/superb`
config `si` needs this same manual download), so `HUB` is None. `hub=` reads a copy of your own (in memory, a
`save_to_disk` folder or a private hub id): a column `speaker` (the id, e.g. `id10001`) and an `audio`
column, with either a column `split` (iden_split.txt's code 1 / 2 / 3, or train / valid / test; every table
read) or the splits `train`, `valid` (or `validation`) and `test`. Built from the download:

    import datasets
    lines = [line.split() for line in open(f"{root}/iden_split.txt") if line.strip()]
    table = datasets.Dataset.from_dict({"split": [int(code) for code, _ in lines],
        "speaker": [e.split("/")[0] for _, e in lines], "audio": [f"{root}/wav/{e}" for _, e in lines]})
    table = table.cast_column("audio", datasets.Audio())  # then .push_to_hub(<id>, private=True)

The hub split is taken as the official one; `canonical` is True only when its sizes are the official
138,361 / 6,904 / 8,251.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import (
    HubInput,
    HubSplit,
    hub_column,
    hub_split_tables,
    hub_splits_of,
    merged_table,
)
from ssl_lightning.data.manifest import OnError

SPLIT_LIST = "iden_split.txt"
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}
OFFICIAL_SIZES = {"train": 138361, "valid": 6904, "test": 8251}
SPEAKER = re.compile(r"id\d{5}")
"""A VoxCeleb1 speaker id, e.g. id10001."""
HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
SPLIT_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/iden_split.txt"


def read_iden_split(path: Path) -> dict[str, list[str]]:
    """The wav paths (relative to `wav/`) of every split of `iden_split.txt`, in file order.

    Raises:
        FileNotFoundError: no such file (the message says where to download it).
        ValueError: a line is not `<1|2|3> <speaker>/<youtube id>/<file>.wav` with speaker `id<5 digits>`
            (naming the line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"VoxCeleb1 split list not found: {path}; download it from {SPLIT_URL}")
    splits: dict[str, list[str]] = {split: [] for split in SPLIT_CODES.values()}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        parts = fields[-1].split("/")
        if (
            len(fields) != 2
            or fields[0] not in SPLIT_CODES
            or len(parts) != 3
            or not SPEAKER.fullmatch(parts[0])
        ):
            raise ValueError(
                f"{path} line {number}: expected `<1|2|3> <speaker>/<youtube id>/<file>.wav`, got {line!r}"
            )
        splits[SPLIT_CODES[fields[0]]].append(fields[1])
    return splits


def hub_speakers(table, where: str) -> list[str]:
    """The `speaker` column of a hub table, or a ValueError naming the ids that are not `id<5 digits>`."""
    speakers = [str(speaker) for speaker in hub_column(table, "speaker", where)]
    wrong = sorted({speaker for speaker in speakers if not SPEAKER.fullmatch(speaker)})
    if wrong:
        raise ValueError(
            f"{where}: speaker(s) {wrong[:5]} are not VoxCeleb1 ids like id10001 (the wav/ folders)"
        )
    return speakers


def hub_split_column(table, where: str) -> list[str]:
    """The split of every row from a hub table's `split` column (iden_split.txt's 1 / 2 / 3, or the names).

    Raises:
        ValueError: the column is missing or holds another value (naming it).
    """
    names = {**SPLIT_CODES, **{split: split for split in SPLIT_CODES.values()}}
    codes = [
        str(code) for code in hub_column(table, "split", f"{where} (one table: it needs a split column)")
    ]
    unknown = sorted(set(codes) - set(names))
    if unknown:
        raise ValueError(f"{where}: split value(s) {unknown[:5]} are none of {list(names)}")
    return [names[code] for code in codes]


class VoxCeleb1DataModule(AudioClassificationDataModule):
    """VoxCeleb1 identification with the official `iden_split.txt` splits (see the module docstring).

    Clips are single-label (the speaker), served at `sample_rate`. Training crops last `train_seconds`
    (HARES: 3 s); evaluation cuts each utterance into contiguous sub-clips of `clip_seconds` (3 s), the
    last one zero-padded.

    Args:
        root: the folder holding `wav/` (dev and test merged) and `iden_split.txt`.
        hub: a copy of your own in `datasets` form instead of `root` (columns and splits in the module
            docstring; no public copy exists); see `AudioClassificationDataModule`.
    """

    label_type = "single"

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
            root, hub, f"wav/ of the dev and test archives from {HOMEPAGE}, and {SPLIT_LIST}"
        )
        self.save_hyperparameters(ignore=["hub"])
        self._listed: tuple[dict[str, list[str]], tuple[str, ...]] | None = None
        self._hub_classes: tuple[str, ...] = ()
        self._hub_sizes: dict[str, int] = {}

    def _read_list(self) -> tuple[dict[str, list[str]], tuple[str, ...]]:
        """The entries of `iden_split.txt` per split and the sorted speaker ids (read once)."""
        if self._listed is None:
            if not self.root.is_dir():
                raise FileNotFoundError(
                    f"VoxCeleb1 root not found: {self.root}. Download the audio from {HOMEPAGE} "
                    f"(registration), unpack dev and test into <root>/wav/ and put {SPLIT_URL} beside it"
                )
            listed = read_iden_split(self.root / SPLIT_LIST)
            speakers = {entry.partition("/")[0] for entries in listed.values() for entry in entries}
            self._listed = listed, tuple(sorted(speakers))
        return self._listed

    @property
    def classes(self) -> tuple[str, ...]:
        """The speaker ids of `iden_split.txt` (or of the hub copy), sorted (1,251 on the real list)."""
        if self.root is None:
            self.setup()  # the hub copy: the speakers come with the table
            return self._hub_classes
        return self._read_list()[1]

    @property
    def canonical(self) -> bool:
        """True for the official identification splits, the ones HARES used (through TFDS): from root, or a
        hub split of their sizes."""
        if self.root is not None:
            return True
        self.setup()
        return self._hub_sizes == OFFICIAL_SIZES

    @property
    def split_note(self) -> str:
        if self.root is not None:
            return (
                "official splits: iden_split.txt of VoxCeleb1 (1 train, 2 valid, 3 test), as HARES via TFDS"
            )
        sizes = " / ".join(str(size) for size in self._hub_sizes.values())
        official = (
            "the official sizes, as HARES" if self.canonical else "not the official 138361 / 6904 / 8251"
        )
        return f"VoxCeleb1: the train / valid / test split of a hub copy ({sizes}: {official})"

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The rows of every split (by the `split` column, else the copy's splits), labelled by speaker."""
        where = self.hub_where("VoxCeleb1")
        named = hub_split_tables(tables, where)
        if named is None:
            table = merged_table(tables)
            speakers, split_of = hub_speakers(table, where), hub_split_column(table, where)
            rows = {
                split: [row for row, of in enumerate(split_of) if of == split]
                for split in SPLIT_CODES.values()
            }
            parts = {split: (table, rows[split], [(speakers[row],) for row in rows[split]]) for split in rows}
        else:
            parts = {
                split: (table, range(len(table)), [(s,) for s in hub_speakers(table, f"{where}[{split}]")])
                for split, table in named.items()
            }
        self._hub_classes = tuple(
            sorted({speaker for _, _, labels in parts.values() for (speaker,) in labels})
        )
        self._hub_sizes = {split: len(rows) for split, (_, rows, _) in parts.items()}
        return hub_splits_of(parts, audio_column, where)

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split in list order, labelled with their speaker; missing audio is reported."""
        audio = self.root / "wav"
        splits = {}
        for split, entries in self._read_list()[0].items():
            missing = [entry for entry in entries if not (audio / entry).is_file()]
            where = f"{self.root / SPLIT_LIST} ({split})"
            check_missing(missing, len(entries), where, self.on_error, f"looked in {audio}")
            absent = set(missing)
            splits[split] = [(audio / e, (e.partition("/")[0],)) for e in entries if e not in absent]
        sources = {split: f"lines {code} of {self.root / SPLIT_LIST}" for code, split in SPLIT_CODES.items()}
        check_splits(splits, sources, f"VoxCeleb1 (audio in {audio})")
        return splits
