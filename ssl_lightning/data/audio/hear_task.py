"""`HearTaskDataModule`: a HEAR benchmark scene task as hear-preprocess writes it, with HEAR's splits.

Layout of one task folder (`tasks/<task_name>-<version>-<mode>/`, e.g. `tasks/esc50-v2.0.0-full/`, as
hear-preprocess writes it and the HEAR Zenodo archives unpack; `root`):

    task_metadata.json        the task config: task_name, embedding_type (scene|event), prediction_type
                              (multiclass|multilabel), split_mode (trainvaltest|presplit_kfold|
                              new_split_kfold), sample_duration (s or null), splits (e.g. fold00..fold04)
    labelvocabulary.csv       columns idx,label (pandas CSV)
    <split>.json              {"<file>.wav": ["label", ...]} per split (scene tasks)
    <sample_rate>/<split>/*.wav   the audio at each rate prepared (the Zenodo copy: 48000 only)

Splits are HEAR's (`heareval` `get_splits_from_metadata`): train / valid / test as given, or for k-fold
tasks test = fold `fold`, valid = the next fold (cyclically, in sorted order) and train = the others.
Audio is read from the `<sample_rate>` folder when there is one, else from the highest rate there is, and
resampled. Event (timestamp) tasks are not read. No Hugging Face copy exists (HUB is None).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ssl_lightning.data.audio.datamodule import (
    AudioClassificationDataModule,
    Clip,
    check_missing,
    check_splits,
)
from ssl_lightning.data.audio.hub import HubInput
from ssl_lightning.data.manifest import OnError

METADATA = "task_metadata.json"
VOCABULARY = "labelvocabulary.csv"
DEFAULT_CLIP_SECONDS = 10.0
"""Sub-clip length for tasks without a fixed `sample_duration` (a library choice, not HEAR's)."""
LABEL_TYPES = {"multiclass": "single", "multilabel": "multi"}
SPLIT_MODES = ("trainvaltest", "presplit_kfold", "new_split_kfold")
REQUIRED_KEYS = ("task_name", "embedding_type", "prediction_type", "split_mode", "splits")
SOURCE = "run hear-preprocess (github.com/hearbenchmark/hear-preprocess) or unpack a HEAR task archive"


def read_task_metadata(root: Path) -> dict[str, Any]:
    """`task_metadata.json` of a task folder, checked to be a scene task with known split and prediction
    types and a list of splits.

    Raises:
        FileNotFoundError: no such folder or file.
        ValueError: a key is missing or has an unknown value (the message names it).
        NotImplementedError: an event (timestamp) task.
    """
    path = root / METADATA
    if not path.is_file():
        raise FileNotFoundError(
            f"HEAR task metadata not found: {path}. Pass root= one task folder "
            f"(tasks/<task>-<version>-<mode>/ holding {METADATA}); {SOURCE}"
        )
    metadata = json.loads(path.read_text())
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ValueError(f"{path} lacks key(s) {missing}; its keys are {sorted(metadata)}")
    if metadata["embedding_type"] == "event":
        raise NotImplementedError(
            f"{metadata['task_name']} ({path}) is an event (timestamp) task; HearTaskDataModule reads scene "
            "tasks only"
        )
    checks = (
        ("embedding_type", ("scene",)),
        ("prediction_type", tuple(LABEL_TYPES)),
        ("split_mode", SPLIT_MODES),
    )
    for key, allowed in checks:
        if metadata[key] not in allowed:
            raise ValueError(f"{path}: {key} must be one of {list(allowed)}, got {metadata[key]!r}")
    splits = metadata["splits"]
    if not isinstance(splits, list) or not splits or not all(isinstance(split, str) for split in splits):
        raise ValueError(f"{path}: splits must be a non-empty list of split names, got {splits!r}")
    if metadata["split_mode"] == "trainvaltest" and sorted(splits) != ["test", "train", "valid"]:
        raise ValueError(f"{path}: a trainvaltest task has splits train, valid and test, got {splits}")
    return metadata


def read_label_vocabulary(path: Path) -> tuple[str, ...]:
    """The labels of `labelvocabulary.csv` (columns idx,label), in idx order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a column is missing, an idx is not an integer, the idx are not 0..C-1, or a label repeats.
    """
    if not path.is_file():
        raise FileNotFoundError(f"HEAR label vocabulary not found: {path}; {SOURCE}")
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"idx", "label"} <= set(reader.fieldnames or []):
            raise ValueError(f"{path} needs columns idx,label; its header is {reader.fieldnames}")
        labels = {}
        for line, row in enumerate(reader, start=2):
            try:
                labels[int(row["idx"])] = row["label"]
            except ValueError:
                raise ValueError(f"{path} line {line}: idx {row['idx']!r} is not an integer") from None
    if sorted(labels) != list(range(len(labels))) or not labels:
        raise ValueError(f"{path}: idx must be 0..C-1 with C >= 1, got {sorted(labels)}")
    if len(set(labels.values())) != len(labels):
        raise ValueError(f"{path}: a label appears twice")
    return tuple(labels[index] for index in range(len(labels)))


def read_split_labels(path: Path, classes: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """`{file name: labels}` of a scene task's `<split>.json`; labels are compared as strings (numeric labels
    such as MIDI pitches are JSON numbers there and CSV text in the vocabulary).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a JSON object of label lists, or a label outside the vocabulary (the message names
            the file name).
    """
    if not path.is_file():
        raise FileNotFoundError(f"HEAR split labels not found: {path}; {SOURCE}")
    entries = json.loads(path.read_text())
    if not isinstance(entries, dict):
        raise ValueError(f"{path} must map file names to label lists, got a {type(entries).__name__}")
    known = set(classes)
    out = {}
    for name, labels in entries.items():
        if not isinstance(labels, list) or not labels:
            raise ValueError(f"{path}: {name!r} must have a non-empty list of labels, got {labels!r}")
        labels = tuple(str(label) for label in labels)
        unknown = [label for label in labels if label not in known]
        if unknown:
            raise ValueError(f"{path}: {name!r} has label(s) {unknown} that are not in {VOCABULARY}")
        out[name] = labels
    return out


def audio_folder(root: Path, sample_rate: int) -> Path:
    """`<root>/<sample_rate>`, or the folder of the highest rate there is when that one is absent.

    Raises:
        FileNotFoundError: no `<rate>/` folder at all.
    """
    rates = sorted(int(path.name) for path in root.iterdir() if path.is_dir() and path.name.isdigit())
    if not rates:
        raise FileNotFoundError(
            f"{root} has no <sample_rate>/ audio folder (e.g. 16000/ or 48000/); {SOURCE}"
        )
    return root / str(sample_rate if sample_rate in rates else rates[-1])


class HearTaskDataModule(AudioClassificationDataModule):
    """One HEAR scene task (multiclass -> "single", multilabel -> "multi") with HEAR's splits.

    Evaluation sub-clips last `clip_seconds`: by default the task's `sample_duration` (every clip whole,
    one embedding per clip as in HEAR), or 10 s for tasks of varying length. Missing audio files are
    counted and reported in `setup` (raise, or leave them out with `on_error="skip"`).

    Args:
        root: one hear-preprocess task folder (holds `task_metadata.json`).
        fold: the test fold of a k-fold task, 0..k-1 (fold00 = 0, HEAR's order); 0 for trainvaltest tasks.
        clip_seconds: sub-clip length (None: the task's `sample_duration`, else 10 s).
        train_seconds: training crop length (None: `clip_seconds`).
        hub: not supported (no Hugging Face copy); must be None.
    """

    canonical = True
    """HEAR's own splits."""

    def __init__(
        self,
        root: str | None = None,
        fold: int = 0,
        batch_size: int = 32,
        num_workers: int = 0,
        sample_rate: int = 16000,
        clip_seconds: float | None = None,
        train_seconds: float | None = None,
        on_error: OnError = "raise",
        seed: int = 0,
        hub: HubInput | None = None,
    ) -> None:
        if root is None or hub is not None:
            raise ValueError(
                "HearTaskDataModule needs root= (a hear-preprocess task folder) and has no Hugging Face "
                f"copy (hub= must be None); got root={root!r}, hub={hub!r}"
            )
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"HEAR task folder not found: {self.root}; {SOURCE}")
        self.metadata = read_task_metadata(self.root)
        duration = self.metadata.get("sample_duration") or DEFAULT_CLIP_SECONDS
        super().__init__(
            batch_size,
            num_workers,
            sample_rate,
            clip_seconds or float(duration),
            on_error=on_error,
            seed=seed,
            train_seconds=train_seconds,
        )
        splits = self.metadata["splits"]
        folds = 1 if self.metadata["split_mode"] == "trainvaltest" else len(splits)
        if not isinstance(fold, int) or not 0 <= fold < folds:
            raise ValueError(
                f"fold must be one of 0..{folds - 1} for {self.task_name} ({self.metadata['split_mode']}), "
                f"got {fold!r}"
            )
        self.save_hyperparameters(ignore=["hub"])
        self._classes: tuple[str, ...] | None = None

    @property
    def task_name(self) -> str:
        """The task's name and version, e.g. `esc50-v2.0.0`."""
        return f"{self.metadata['task_name']}-{self.metadata.get('version', '?')}"

    @property
    def folds(self) -> dict[str, tuple[str, ...]]:
        """The task splits (hear-preprocess names) that make up train, valid and test."""
        if self.metadata["split_mode"] == "trainvaltest":
            return {split: (split,) for split in ("train", "valid", "test")}
        names = sorted(self.metadata["splits"])
        test, valid = names[self.hparams.fold], names[(self.hparams.fold + 1) % len(names)]
        return {
            "train": tuple(n for n in names if n not in (test, valid)),
            "valid": (valid,),
            "test": (test,),
        }

    @property
    def classes(self) -> tuple[str, ...]:
        """The labels of `labelvocabulary.csv`, in idx order."""
        if self._classes is None:
            self._classes = read_label_vocabulary(self.root / VOCABULARY)
        return self._classes

    @property
    def label_type(self) -> str:
        return LABEL_TYPES[self.metadata["prediction_type"]]

    @property
    def split_note(self) -> str:
        """Which split, from which files."""
        where = ", ".join(f"{split} {'+'.join(names)}" for split, names in self.folds.items())
        return f"HEAR {self.task_name} ({self.metadata['split_mode']}): {where} (<split>.json in {self.root})"

    def read_splits(self) -> dict[str, list[Clip]]:
        """Clips per split from the `<split>.json` files; missing audio files are reported."""
        audio = audio_folder(self.root, self.sample_rate)
        splits: dict[str, list[Clip]] = {}
        for split, names in self.folds.items():
            clips = [
                (audio / name / filename, labels)
                for name in names
                for filename, labels in read_split_labels(self.root / f"{name}.json", self.classes).items()
            ]
            missing = [str(path.relative_to(audio)) for path, _ in clips if not path.is_file()]
            where = f"{self.task_name} {split} ({', '.join(f'{n}.json' for n in names)})"
            check_missing(missing, len(clips), where, self.on_error, f"looked in {audio}")
            absent = set(missing)
            splits[split] = [clip for clip in clips if str(clip[0].relative_to(audio)) not in absent]
        sources = {split: f"{'+'.join(names)} of {self.root}" for split, names in self.folds.items()}
        check_splits(splits, sources, f"HEAR {self.task_name} (fold={self.hparams.fold}, audio in {audio})")
        return splits
