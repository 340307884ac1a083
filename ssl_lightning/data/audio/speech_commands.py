"""`SpeechCommandsDataModule`: Google Speech Commands keyword spotting, v2 (35 words) or v1 (12 classes).

Layout of an unpacked `speech_commands_v0.0{1,2}.tar.gz` (`root`):

    <root>/<word>/<speaker>_nohash_<n>.wav   1 s (some shorter), 16 kHz mono
    <root>/_background_noise_/*.wav          6 long noise recordings
    <root>/validation_list.txt               relative paths `<word>/<file>.wav`, one a line
    <root>/testing_list.txt                  (both assigned by a hash of the speaker: no speaker
                                             crosses splits); train is every other word clip

Versions (the BEATs paper's KS2 and KS1):
    2: the 35 words of v0.02; train / valid / test = the rest / validation_list / testing_list
       (84,843 / 9,981 / 11,005 clips); background noise is not used.
    1: SUPERB's 12-class task: the 10 commands yes, no, up, down, left, right, on, off, stop, go;
       every other word is `_unknown_`; `_silence_` is the background-noise recordings (SUPERB puts the
       same files in train and valid; training takes random 1 s crops, evaluation their 1 s sub-clips).
       Train / valid = the rest / validation_list of `root` (testing_list clips are not used), and test
       is the separate archive `speech_commands_test_set_v0.01.tar.gz` unpacked at `test_root` (one
       folder per class, `_silence_` and `_unknown_` included; 3,081 clips). SUPERB trains with
       class-balanced sampling: `weighted_sampling=True`. A v0.02 root works too (its 25 other
       words become `_unknown_`), but SUPERB and BEATs use v0.01.
"""

from __future__ import annotations

from pathlib import Path

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.manifest import ManifestAudioDataset, Mode, OnError

V1_COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
V1_CLASSES = (*V1_COMMANDS, UNKNOWN, SILENCE)
"""SUPERB's class order for KS1."""
V2_CLASSES = tuple(
    sorted(
        (
            *("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward"),
            *("four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on"),
            *("one", "right", "seven", "sheila", "six", "stop", "three", "tree", "two", "up"),
            *("visual", "wow", "yes", "zero"),
        )
    )
)
"""The 35 words of v0.02, sorted (v0.01 has 30: all but backward, follow, forward, learn, visual)."""
BACKGROUND = "_background_noise_"
LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
DOWNLOAD = "http://download.tensorflow.org/data/speech_commands_v0.0{version}.tar.gz"
TEST_DOWNLOAD = "http://download.tensorflow.org/data/speech_commands_test_set_v0.01.tar.gz"


def _folders(root: Path) -> list[Path]:
    """Sub-folders of `root`, sorted, without hidden ones."""
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _wavs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav"))


class SpeechCommandsDataModule(AudioClassificationDataModule):
    """Speech Commands v2 (35 classes) or v1 (SUPERB's 12 classes); see the module docstring.

    Clips are single-label, served at `sample_rate`; clips shorter than `clip_seconds` (1 s) are
    zero-padded (padding_mask True there). List entries without an audio file are counted and reported
    in `setup` (raise, or leave them out with `on_error="skip"`).

    Args:
        root: the unpacked `speech_commands_v0.0<version>` archive (word folders and the two lists).
        version: 2 (35 words) or 1 (12 classes).
        test_root: version 1 only: the unpacked `speech_commands_test_set_v0.01` archive (the test split).
        weighted_sampling: class-balanced training draws (SUPERB's KS1 recipe).
    """

    def __init__(
        self,
        root: str,
        version: int = 2,
        test_root: str | None = None,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        on_error: OnError = "raise",
        seed: int = 0,
        weighted_sampling: bool = False,
    ) -> None:
        super().__init__(
            batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, weighted_sampling
        )
        if version not in (1, 2):
            raise ValueError(f"version must be 1 (12 classes) or 2 (35 classes), got {version!r}")
        if version == 2 and test_root is not None:
            raise ValueError(
                "test_root is for version=1 only (SUPERB's separate test archive); version 2 tests on "
                "testing_list.txt of root"
            )
        self.save_hyperparameters()
        self.root = Path(root).expanduser()
        self.test_root = None if test_root is None else Path(test_root).expanduser()

    @property
    def classes(self) -> tuple[str, ...]:
        """The 35 words (v2) or the 10 commands, `_unknown_` and `_silence_` (v1)."""
        return V2_CLASSES if self.hparams.version == 2 else V1_CLASSES

    @property
    def label_type(self) -> str:
        return "single"

    def dataset(self, split: str, mode: Mode) -> ManifestAudioDataset:
        """As `AudioClassificationDataModule.dataset`; v1's test split needs `test_root`."""
        if split == "test" and self.hparams.version == 1 and self.test_root is None:
            raise ValueError(
                f"SpeechCommandsDataModule(version=1) tests on SUPERB's separate test set: unpack "
                f"{TEST_DOWNLOAD} and pass its folder as test_root"
            )
        return super().dataset(split, mode)

    def _word_folders(self) -> dict[str, Path]:
        """The word folders of `root`, checked against the version's vocabulary."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"Speech Commands root not found: {self.root}. Unpack "
                f"{DOWNLOAD.format(version=self.hparams.version)} into it"
            )
        words = {path.name: path for path in _folders(self.root) if not path.name.startswith("_")}
        expected = set(V2_CLASSES) if self.hparams.version == 2 else set(V1_COMMANDS)
        lacking = sorted(expected - set(words))
        if lacking:
            raise FileNotFoundError(
                f"{self.root} lacks the word folder(s) {lacking} of Speech Commands "
                f"v{self.hparams.version} (is it {DOWNLOAD.format(version=self.hparams.version)} unpacked?)"
            )
        extra = sorted(set(words) - set(V2_CLASSES))
        if extra:
            raise ValueError(f"{self.root} holds folder(s) {extra} that are not Speech Commands words")
        return words

    def _label(self, word: str) -> str:
        """A word's class: itself (v2), or itself / `_unknown_` (v1)."""
        return word if self.hparams.version == 2 or word in V1_COMMANDS else UNKNOWN

    def _read_list(self, split: str, known: set[str]) -> list[str]:
        """The entries of the split's list file that have an audio file (missing ones are reported)."""
        path = self.root / LISTS[split]
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: it ships with the Speech Commands archive")
        entries = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [entry for entry in entries if entry not in known]
        check_missing(missing, len(entries), str(path), self.on_error, f"looked in {self.root}/<word>/")
        return [entry for entry in entries if entry in known]

    def _background(self) -> list[Clip]:
        """v1's `_silence_` clips: the background-noise recordings."""
        noise = _wavs(self.root / BACKGROUND)
        if not noise:
            raise FileNotFoundError(
                f"no {BACKGROUND}/*.wav in {self.root}: version 1 draws its _silence_ class from them"
            )
        return [(path, (SILENCE,)) for path in noise]

    def _test_set(self) -> list[Clip]:
        """v1's test split: the class folders of `test_root`."""
        if not self.test_root.is_dir():
            raise FileNotFoundError(f"Speech Commands test set not found: test_root={self.test_root}")
        folders = {path.name: path for path in _folders(self.test_root)}
        lacking, extra = sorted(set(V1_CLASSES) - set(folders)), sorted(set(folders) - set(V1_CLASSES))
        if lacking or extra:
            raise ValueError(
                f"test_root {self.test_root} must hold exactly the 12 class folders {list(V1_CLASSES)}; "
                f"it lacks {lacking} and has extra {extra}"
            )
        return [(path, (name,)) for name in V1_CLASSES for path in _wavs(folders[name])]

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split, see the module docstring."""
        files = {
            f"{word}/{path.name}": path
            for word, folder in self._word_folders().items()
            for path in _wavs(folder)
        }
        listed = {split: self._read_list(split, set(files)) for split in LISTS}
        held_out = set(listed["valid"]) | set(listed["test"])
        train = self._clips(files, [entry for entry in files if entry not in held_out])
        valid = self._clips(files, listed["valid"])
        sources = {
            "train": f"the word clips of {self.root} not in {' or '.join(LISTS.values())}",
            "valid": str(self.root / LISTS["valid"]),
            "test": str(self.root / LISTS["test"]) if self.hparams.version == 2 else str(self.test_root),
        }
        name = f"Speech Commands v{self.hparams.version}"
        if self.hparams.version == 2:
            splits = {"train": train, "valid": valid, "test": self._clips(files, listed["test"])}
            check_splits(splits, sources, name)
            return splits
        words = {"train": train, "valid": valid}
        words |= {} if self.test_root is None else {"test": self._test_set()}
        check_splits(words, sources, name)  # before the _silence_ clips join train and valid
        silence = self._background()
        return {**words, "train": train + silence, "valid": valid + silence}

    def _clips(self, files: dict[str, Path], entries: list[str]) -> list[Clip]:
        """(path, (class,)) of list entries `<word>/<file>.wav`."""
        return [(files[entry], (self._label(entry.partition("/")[0]),)) for entry in entries]
