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

Hugging Face: no copy with audio (`yangwang825/vox1-iden-full` is metadata only, `s3prl/superb` config
`si` needs this same manual download), so `HUB` is None and `root` is required.
"""

from __future__ import annotations

from pathlib import Path

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput
from ssl_lightning.data.manifest import OnError

SPLIT_LIST = "iden_split.txt"
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}
HOMEPAGE = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html"
SPLIT_URL = "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/meta/iden_split.txt"


def read_iden_split(path: Path) -> dict[str, list[str]]:
    """The wav paths (relative to `wav/`) of every split of `iden_split.txt`, in file order.

    Raises:
        FileNotFoundError: no such file (the message says where to download it).
        ValueError: a line is not `<1|2|3> <speaker>/<youtube id>/<file>.wav` (naming the line).
    """
    if not path.is_file():
        raise FileNotFoundError(f"VoxCeleb1 split list not found: {path}; download it from {SPLIT_URL}")
    splits: dict[str, list[str]] = {split: [] for split in SPLIT_CODES.values()}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or fields[0] not in SPLIT_CODES or len(fields[1].split("/")) != 3:
            raise ValueError(
                f"{path} line {number}: expected `<1|2|3> <speaker>/<youtube id>/<file>.wav`, got {line!r}"
            )
        splits[SPLIT_CODES[fields[0]]].append(fields[1])
    return splits


class VoxCeleb1DataModule(AudioClassificationDataModule):
    """VoxCeleb1 identification with the official `iden_split.txt` splits (see the module docstring).

    Clips are single-label (the speaker), served at `sample_rate`. Training crops last `train_seconds`
    (HARES: 3 s); evaluation cuts each utterance into contiguous sub-clips of `clip_seconds` (3 s), the
    last one zero-padded.

    Args:
        root: the folder holding `wav/` (dev and test merged) and `iden_split.txt`.
        hub: no Hugging Face copy with audio exists; passing it raises (see the module docstring).
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
                "VoxCeleb1DataModule needs exactly one of root= (wav/ of the dev and test archives from "
                f"{HOMEPAGE}, and {SPLIT_LIST}) and hub=; it has no Hugging Face copy with audio, so pass "
                f"root. Got root={root!r}, hub={hub!r}"
            )
        self.save_hyperparameters(ignore=["hub"])
        self.root = None if root is None else Path(root).expanduser()
        self._listed: tuple[dict[str, list[str]], tuple[str, ...]] | None = None

    def _read_list(self) -> tuple[dict[str, list[str]], tuple[str, ...]]:
        """The entries of `iden_split.txt` per split and the sorted speaker ids (read once)."""
        if self._listed is None:
            if self.root is None:
                self.setup()  # raises: hub= has no reader here
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
        """The speaker ids of `iden_split.txt`, sorted (1,251 on the real list)."""
        return self._read_list()[1]

    @property
    def label_type(self) -> str:
        return "single"

    @property
    def canonical(self) -> bool:
        """True: the official identification splits, the ones HARES used (through TFDS)."""
        return True

    @property
    def split_note(self) -> str:
        return "official splits: iden_split.txt of VoxCeleb1 (1 train, 2 valid, 3 test), as HARES via TFDS"

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
