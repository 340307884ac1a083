"""`SpeechCommandsDataModule`: Google Speech Commands keyword spotting, v2 (35 words) or v1 (12 classes).

Layout of an unpacked `speech_commands_v0.0{1,2}.tar.gz` (the archive holds no top folder: unpack it
into `speech_commands_v0.0<n>/`):

    <archive>/<word>/<speaker>_nohash_<n>.wav   1 s (some shorter), 16 kHz mono
    <archive>/_background_noise_/*.wav          6 long noise recordings (about 1 min each)
    <archive>/validation_list.txt               relative paths `<word>/<file>.wav`, one a line
    <archive>/testing_list.txt                  (both assigned by a hash of the speaker: no speaker
                                                crosses splits); train is every other word clip
    <test set>/<class>/*.wav                    `speech_commands_test_set_v0.0<n>.tar.gz`: the 12
                                                v1 classes, `_unknown_/<word>_<speaker>_nohash_<n>.wav`

`root` is the archive folder itself, or the folder holding `speech_commands_v0.0<n>/` and
`speech_commands_test_set_v0.0<n>/` (the HARES layout; the test set is then found without `test_root`).

Versions and builds:
    2: the 35 words of v0.02; train / valid / test = the rest / validation_list / testing_list
       (84,843 / 9,981 / 11,005 clips); background noise is not used. HARES's SC-v2.
    1, v1_build="tfds": TFDS `speech_commands`, HARES's SC-v1 (85,511 / 10,102 / 4,890 from v0.02):
       the 10 commands, every other word `_unknown_`; train / valid = the word clips outside / inside
       validation_list (testing_list clips are not used) plus `_silence_` items: each background
       recording cut into 1 s windows at 0.5 s hop (starts before its end minus 1 s), running_tap.wav's
       in valid and the 5 others' in train; test = the separate test archive. Class order as TFDS:
       the sorted commands, `_silence_`, `_unknown_`.
    1, v1_build="superb": SUPERB's KS1 (the BEATs paper's), from a v0.01 archive: the same word
       mapping, but `_silence_` is the 6 background recordings whole, in train and valid (training
       takes random 1 s crops, evaluation their 1 s sub-clips); test = the v0.01 test archive
       (3,081 clips). SUPERB trains with class-balanced sampling: `weighted_sampling=True`.

Hugging Face copy: `google/speech_commands` (configs v0.01 / v0.02, read at the parquet conversion),
columns `file, audio, label` (ClassLabel of the words, `_unknown_`, `_silence_`), `is_unknown`,
`speaker_id`, `utterance_id`; splits train / validation (running_tap.wav added, as TFDS) / test (the
12-class test archive). Its `_silence_` rows are the whole recordings, cut here as TFDS does, so
`hub=` gives the TFDS build exactly; v2's test (testing_list) is not there, and SUPERB's build reads
`root` only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from torch import Tensor

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import PARQUET, HubAudioDataset, HubInput, HubSource, HubSplit, decode_cell
from ssl_lightning.data.manifest import ManifestAudioDataset, Mode, OnError, probe_num_samples

V1_COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
V1_CLASSES = (*V1_COMMANDS, UNKNOWN, SILENCE)
"""SUPERB's class order for KS1."""
TFDS_V1_CLASSES = (*sorted(V1_COMMANDS), SILENCE, UNKNOWN)
"""TFDS `speech_commands`' class order."""
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
V0_02_WORDS = ("backward", "follow", "forward", "learn", "visual")
BACKGROUND = "_background_noise_"
VALID_NOISE = "running_tap.wav"
"""The background recording whose windows TFDS puts in valid (the others' go to train)."""
LISTS = {"valid": "validation_list.txt", "test": "testing_list.txt"}
DOWNLOAD = "http://download.tensorflow.org/data/speech_commands_{release}.tar.gz"
TEST_DOWNLOAD = "http://download.tensorflow.org/data/speech_commands_test_set_{release}.tar.gz"
V1Build = Literal["superb", "tfds"]
HUB_SPLITS = {"train": "train", "valid": "validation", "test": "test"}
T = TypeVar("T")


def _folders(root: Path) -> list[Path]:
    """Sub-folders of `root`, sorted, without hidden ones."""
    return sorted(path for path in root.iterdir() if path.is_dir() and not path.name.startswith("."))


def _wavs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.wav"))


def window_count(num_samples: int, sample_rate: int) -> int:
    """Number of TFDS `_silence_` windows (1 s at 0.5 s hop) of a recording of `num_samples`: the starts
    0, hop, 2 hop, ... strictly before `num_samples - sample_rate` (e.g. 3 for 2.5 s, 0 for 1 s)."""
    return len(range(0, num_samples - sample_rate, sample_rate // 2))


def with_windows(whole: list[T], recordings: list[T], counts: list[int]) -> tuple[list[T], list[int]]:
    """(`whole` then each of `recordings` once per window, the window index of each: -1 for `whole`),
    where recording i has `counts[i]` windows."""
    items = whole + [item for item, count in zip(recordings, counts, strict=True) for _ in range(count)]
    return items, [-1] * len(whole) + [k for count in counts for k in range(count)]


class _SilenceWindows:
    """Serves item i as window `windows[i]` (1 s from `windows[i]` x 0.5 s) of its recording, or the
    whole clip where `windows[i]` is -1. Mixed into a dataset class ahead of it (its `read`/`probe`)."""

    def __init__(self, windows: Sequence[int], *args: Any, **kwargs: Any) -> None:
        self.windows = np.asarray(windows, dtype=np.int64)
        super().__init__(*args, **kwargs)

    def read(self, clip: int) -> Tensor:
        waveform = super().read(clip)
        window = int(self.windows[clip])
        if window < 0:
            return waveform
        start = window * (self.sample_rate // 2)
        return waveform[start : start + self.sample_rate]

    def probe(self, clip: int) -> int:
        return super().probe(clip) if self.windows[clip] < 0 else self.sample_rate


class SilenceWindowDataset(_SilenceWindows, ManifestAudioDataset):
    """`ManifestAudioDataset` whose `_silence_` items are windows of the background recordings:
    `SilenceWindowDataset(windows, items, classes, label_type, ...)`."""


class HubSilenceWindowDataset(_SilenceWindows, HubAudioDataset):
    """`HubAudioDataset` whose `_silence_` items are windows of the background recordings' rows."""


class SpeechCommandsDataModule(AudioClassificationDataModule):
    """Speech Commands v2 (35 classes) or v1 (12 classes, TFDS's or SUPERB's build); see the module docstring.

    Clips are single-label, served at `sample_rate`; clips shorter than `clip_seconds` (1 s: HARES
    trains and evaluates on whole clips) are zero-padded (padding_mask True there). List entries
    without an audio file are counted and reported in `setup` (raise, or leave them out with
    `on_error="skip"`).

    Args:
        root: the unpacked `speech_commands_v0.0<n>` archive, or the folder holding it and its test set.
        version: 2 (35 words) or 1 (12 classes).
        v1_build: version 1's build: "superb" (default) or "tfds" (HARES).
        test_root: version 1 only: the unpacked test archive, when not beside the archive under `root`.
        weighted_sampling: class-balanced training draws (SUPERB's KS1 recipe).
        hub: read the clips from Hugging Face (`"google/speech_commands"`, or in-memory splits with its
            columns): version 2 (no test split there) or version 1 with `v1_build="tfds"`.
    """

    HUB = HubSource("google/speech_commands", revision=PARQUET, name="v0.02")

    label_type = "single"

    def __init__(
        self,
        root: str | None = None,
        version: int = 2,
        v1_build: V1Build = "superb",
        test_root: str | None = None,
        weighted_sampling: bool = False,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float = 1.0,
        train_seconds: float | None = None,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
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
        self.root = self.source_root(root, hub, f"the unpacked {DOWNLOAD.format(release='v0.02')}")
        if version not in (1, 2):
            raise ValueError(f"version must be 1 (12 classes) or 2 (35 classes), got {version!r}")
        if v1_build not in ("superb", "tfds"):
            raise ValueError(f"v1_build must be 'superb' or 'tfds', got {v1_build!r}")
        if version == 2 and test_root is not None:
            raise ValueError(
                "test_root is for version=1 only (the separate 12-class test archive); version 2 tests on "
                "testing_list.txt of root"
            )
        if hub is not None and (test_root is not None or (version == 1 and v1_build == "superb")):
            raise ValueError(
                "hub= serves version=2 or version=1 with v1_build='tfds' (its test split comes with it, "
                "so no test_root); SUPERB's build reads root="
            )
        self.save_hyperparameters(ignore=["hub"])
        self.test_root = None if test_root is None else Path(test_root).expanduser()
        self._windows: dict[str, list[int]] = {}
        self._release: str | None = None

    @property
    def tfds(self) -> bool:
        """Whether this is TFDS's v1 build (windows of the background recordings as `_silence_`)."""
        return self.hparams.version == 1 and self.hparams.v1_build == "tfds"

    @property
    def classes(self) -> tuple[str, ...]:
        """The 35 words (v2), or the 10 commands, `_unknown_` and `_silence_` (v1, in its build's order)."""
        if self.hparams.version == 2:
            return V2_CLASSES
        return TFDS_V1_CLASSES if self.tfds else V1_CLASSES

    @property
    def canonical(self) -> bool:
        """Whether the splits are HARES's: v2 from the lists; v1 as TFDS builds it from v0.02, with a test
        set (the hub's, or a folder whose name does not say v0.01)."""
        self.setup()
        if self.hparams.version == 2:
            return self.hub is None
        test = self._test_folder()
        has_test = self.hub is not None or (test is not None and "v0.01" not in test.name)
        return self.tfds and self._release == "v0.02" and has_test

    @property
    def split_note(self) -> str:
        """One line for a report: the split, its files, and why it is not HARES's when it is not."""
        self.setup()
        source = self._source()
        if self.hparams.version == 2:
            if self.hub is not None:
                return (
                    f"Speech Commands v2 (35 words) from {source}: train / valid = its train / validation "
                    "without the background rows; no test (its test is the 12-class v1 archive, not "
                    "testing_list.txt): not HARES's split"
                )
            return (
                f"Speech Commands v2 (35 words, HARES): {source} clips outside the lists / "
                f"{LISTS['valid']} / {LISTS['test']}"
            )
        test = source if self.hub is not None else str(self._test_folder())
        if self.tfds:
            note = (
                f"Speech Commands v1, TFDS build (12 classes) from {source} ({self._release}): train / valid "
                f"= word clips outside / in {LISTS['valid']} (testing_list clips unused) + 1 s _silence_ "
                f"windows at 0.5 s hop of {BACKGROUND} ({VALID_NOISE} in valid); test = {test}"
            )
            return note if self.canonical else f"{note}; not HARES's: it builds from v0.02 and its test set"
        return (
            f"Speech Commands v1, SUPERB's KS1 build from {source}: train / valid = word clips outside / in "
            f"{LISTS['valid']} + the {BACKGROUND} recordings whole in both; test = {test}; not HARES's "
            "(TFDS's build from v0.02: v1_build='tfds')"
        )

    def _source(self) -> str:
        """Where the clips come from, for notes: the archive folder, or the hub id."""
        if self.root is not None:
            return str(self._archive())
        if isinstance(self.hub, HubSource):
            return f"hub {self.hub.path}"
        return f"hub {self.hub}" if isinstance(self.hub, str) else "in-memory hub tables"

    def dataset(self, split: str, mode: Mode, crops: int | None = None) -> ManifestAudioDataset:
        """As `AudioClassificationDataModule.dataset`; TFDS's `_silence_` windows are items of their own."""
        if split == "test" and self.hparams.version == 2 and self.hub is not None:
            raise ValueError(
                f"{self.HUB.path} has no v2 test split: its test split is the 12-class v1 test archive, "
                "not testing_list.txt. Use root= (the unpacked archive) for v2's test split"
            )
        if split == "test" and self.hparams.version == 1 and self.hub is None and self._test_folder() is None:
            raise ValueError(
                "SpeechCommandsDataModule(version=1) tests on the separate test archive: unpack "
                f"{TEST_DOWNLOAD.format(release=self._preferred_releases()[0])} and pass its folder as "
                "test_root (or put it beside the archive under root)"
            )
        return super().dataset(split, mode, crops)

    def dataset_class(self, split: str, clips: list[Clip] | HubSplit) -> Callable[..., ManifestAudioDataset]:
        """The base's, or for a split holding TFDS's `_silence_` windows the dataset that serves them."""
        if split not in self._windows:
            return super().dataset_class(split, clips)
        kind = HubSilenceWindowDataset if isinstance(clips, HubSplit) else SilenceWindowDataset
        return functools.partial(kind, self._windows[split])

    def _preferred_releases(self) -> tuple[str, ...]:
        """The archive releases this version and build read, preferred first."""
        if self.hparams.version == 2:
            return ("v0.02",)
        return ("v0.02", "v0.01") if self.tfds else ("v0.01", "v0.02")

    def _archive(self) -> Path:
        """The unpacked archive: `root/speech_commands_<release>` when there, else `root` itself."""
        for release in self._preferred_releases():
            if (self.root / f"speech_commands_{release}").is_dir():
                return self.root / f"speech_commands_{release}"
        return self.root

    def _test_folder(self) -> Path | None:
        """v1's test archive: `test_root`, else `root/speech_commands_test_set_<release>` when there."""
        if self.test_root is not None or self.root is None:
            return self.test_root
        archive = self._archive()
        if archive == self.root:
            return None
        test = self.root / archive.name.replace("speech_commands_", "speech_commands_test_set_")
        return test if test.is_dir() else None

    def _word_folders(self, archive: Path) -> dict[str, Path]:
        """The word folders of `archive`, checked against the version's vocabulary."""
        download = DOWNLOAD.format(release=self._preferred_releases()[0])
        if not archive.is_dir():
            raise FileNotFoundError(f"Speech Commands root not found: {archive}. Unpack {download} into it")
        words = {path.name: path for path in _folders(archive) if not path.name.startswith("_")}
        expected = set(V2_CLASSES) if self.hparams.version == 2 else set(V1_COMMANDS)
        lacking = sorted(expected - set(words))
        if lacking:
            raise FileNotFoundError(
                f"{archive} lacks the word folder(s) {lacking} of Speech Commands "
                f"v{self.hparams.version} (is it {download} unpacked?)"
            )
        extra = sorted(set(words) - set(V2_CLASSES))
        if extra:
            raise ValueError(f"{archive} holds folder(s) {extra} that are not Speech Commands words")
        return words

    def _label(self, word: str) -> str:
        """A word's class: itself (v2), or itself / `_unknown_` / `_silence_` (v1)."""
        if self.hparams.version == 2 or word in V1_COMMANDS or word == SILENCE:
            return word
        return UNKNOWN

    def _read_list(self, archive: Path, split: str, known: set[str]) -> list[str]:
        """The entries of the split's list file that have an audio file (missing ones are reported)."""
        path = archive / LISTS[split]
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: it ships with the Speech Commands archive")
        entries = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        missing = [entry for entry in entries if entry not in known]
        check_missing(missing, len(entries), str(path), self.on_error, f"looked in {archive}/<word>/")
        return [entry for entry in entries if entry in known]

    def _background(self, archive: Path) -> list[Path]:
        """The background-noise recordings, v1's `_silence_` source."""
        noise = _wavs(archive / BACKGROUND)
        if not noise:
            raise FileNotFoundError(
                f"no {BACKGROUND}/*.wav in {archive}: version 1 draws its _silence_ class from them"
            )
        if self.tfds and VALID_NOISE not in {path.name for path in noise}:
            raise FileNotFoundError(
                f"{archive / BACKGROUND / VALID_NOISE} not found: TFDS's build takes valid's _silence_ "
                "windows from it; restore it from the archive"
            )
        return noise

    def _test_set(self, test: Path) -> list[Clip]:
        """v1's test split: the class folders of the test archive `test`."""
        if not test.is_dir():
            raise FileNotFoundError(f"Speech Commands test set not found: test_root={test}")
        folders = {path.name: path for path in _folders(test)}
        lacking, extra = sorted(set(V1_CLASSES) - set(folders)), sorted(set(folders) - set(V1_CLASSES))
        if lacking or extra:
            raise ValueError(
                f"test_root {test} must hold exactly the 12 class folders {list(V1_CLASSES)}; "
                f"it lacks {lacking} and has extra {extra}"
            )
        return [(path, (name,)) for name in self.classes for path in _wavs(folders[name])]

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split, see the module docstring."""
        archive = self._archive()
        words = self._word_folders(archive)
        self._release = "v0.02" if set(V0_02_WORDS) <= set(words) else "v0.01"
        files = {f"{word}/{path.name}": path for word, folder in words.items() for path in _wavs(folder)}
        listed = {split: self._read_list(archive, split, set(files)) for split in LISTS}
        held_out = set(listed["valid"]) | set(listed["test"])
        splits = {
            "train": self._clips(files, [entry for entry in files if entry not in held_out]),
            "valid": self._clips(files, listed["valid"]),
        }
        test = self._test_folder()
        sources = {
            "train": f"the word clips of {archive} not in {' or '.join(LISTS.values())}",
            "valid": str(archive / LISTS["valid"]),
            "test": str(archive / LISTS["test"]) if self.hparams.version == 2 else str(test),
        }
        if self.hparams.version == 2:
            splits["test"] = self._clips(files, listed["test"])
        elif test is not None:
            splits["test"] = self._test_set(test)
        check_splits(splits, sources, f"Speech Commands v{self.hparams.version}")  # before _silence_ joins
        if self.hparams.version == 2:
            return splits
        noise = self._background(archive)
        if not self.tfds:
            silence = [(path, (SILENCE,)) for path in noise]
            return {**splits, "train": splits["train"] + silence, "valid": splits["valid"] + silence}
        for split in ("train", "valid"):
            recordings = [path for path in noise if (path.name == VALID_NOISE) == (split == "valid")]
            counts = [
                window_count(probe_num_samples(p, self.sample_rate), self.sample_rate) for p in recordings
            ]
            silence = [(path, (SILENCE,)) for path in recordings]
            splits[split], self._windows[split] = with_windows(splits[split], silence, counts)
        return splits

    def _clips(self, files: dict[str, Path], entries: list[str]) -> list[Clip]:
        """(path, (class,)) of list entries `<word>/<file>.wav`."""
        return [(files[entry], (self._label(entry.partition("/")[0]),)) for entry in entries]

    def hub_splits(self, tables: dict, audio_column: str) -> dict[str, HubSplit]:
        """The hub copy's train / validation / test tables: words mapped to the version's classes; the
        `_silence_` rows of train and validation cut into TFDS's windows (v1) or left out (v2)."""
        lacking = [name for name in HUB_SPLITS.values() if name not in tables]
        if lacking:
            raise ValueError(
                f"Speech Commands hub tables lack split(s) {lacking}; they have {list(tables)} "
                f"(google/speech_commands has {list(HUB_SPLITS.values())})"
            )
        feature = tables["train"].features.get("label")
        if not hasattr(feature, "names"):
            raise ValueError(
                f"the hub copy's label column must be a ClassLabel (google/speech_commands'), got {feature!r}"
            )
        self._release = "v0.02" if set(V0_02_WORDS) <= set(feature.names) else "v0.01"
        splits = {}
        for split, name in HUB_SPLITS.items():
            if split == "test" and self.hparams.version == 2:
                continue
            table, where = tables[name], f"Speech Commands hub copy [{name}]"
            words = [feature.names[label] for label in table["label"]]
            unknown = sorted(set(words) - set(V2_CLASSES) - {SILENCE, UNKNOWN})
            if unknown:
                raise ValueError(f"{where}: labels {unknown} are not Speech Commands words")
            whole = [row for row, word in enumerate(words) if word != SILENCE or split == "test"]
            rows = whole
            if self.tfds and split != "test":
                noise = [row for row, word in enumerate(words) if word == SILENCE]
                counts = [self._hub_window_count(table, row, audio_column, where) for row in noise]
                rows, self._windows[split] = with_windows(whole, noise, counts)
            labels = [(self._label(words[row]),) for row in rows]
            splits[split] = HubSplit(table, rows, labels, audio_column, where)
        return splits

    def _hub_window_count(self, table: Any, row: int, audio_column: str, where: str) -> int:
        """TFDS's window count of one background recording of a hub table (decoded once, at setup)."""
        waveform, rate = decode_cell(table[row][audio_column], f"{where} row {row}")
        return window_count(math.ceil(waveform.numel() * self.sample_rate / rate), self.sample_rate)
