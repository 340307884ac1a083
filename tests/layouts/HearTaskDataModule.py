"""Tiny hear-preprocess task folders (`tasks/<task_name>-<version>-full/`), written as its `FinalCombine`
step writes them: `task_metadata.json` (the task config, `json.dump(..., indent=True)`), one `<split>.json`
per split (`{"<file>.wav": [labels]}`, indent=True), `labelvocabulary.csv` (pandas `to_csv`: header
`idx,label`, labels sorted, quoted when they hold a comma) and `<rate>/<split>/<file>.wav`.

Two scene tasks shaped like HEAR's: an ESC-50-like 5-fold multiclass task (`presplit_kfold`, 5 classes
x 2 clips per fold, 0.5 s tones, at 16000 and 48000 Hz; the real clips are 5 s) and an FSD50K-like
multilabel task (`trainvaltest`, `sample_duration` null, clips of 0.3-1.3 s at 16000 Hz); and an event
task (DCASE 2016 task 2-like) for the "scene tasks only" error. Clip tones encode their first label.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import soundfile

KFOLD_CLASSES = tuple(f"category_{c}" for c in range(5))
MULTILABEL_CLASSES = ("Bark", "Bicycle_bell", "Walk, footsteps", "Wind")
KFOLD_RATES = (16000, 48000)
KFOLD_SECONDS = 0.5


def tone(label_index: int, seconds: float, sample_rate: int) -> np.ndarray:
    """A sine of 200 + 100 * label_index Hz lasting `seconds`, amplitude 0.5."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return 0.5 * np.sin(2 * np.pi * (200 + 100 * label_index) * t)


def write_task(
    folder: Path,
    config: dict,
    labels: dict[str, dict[str, list]],
    seconds: dict[str, float],
    rates: tuple[int, ...],
) -> Path:
    """A task folder: the metadata `config`, per split `labels` ({file: [labels]}) and audio of
    `seconds[file]` at every rate of `rates`; returns `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "task_metadata.json").write_text(json.dumps(config, indent=True))
    vocabulary = sorted(
        {str(label) for split in labels.values() for names in split.values() for label in names}
    )
    with open(folder / "labelvocabulary.csv", "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([("idx", "label"), *enumerate(vocabulary)])
    for split, entries in labels.items():
        (folder / f"{split}.json").write_text(json.dumps(entries, indent=True))
        for rate in rates:
            (folder / str(rate) / split).mkdir(parents=True, exist_ok=True)
            for name, names in entries.items():
                waveform = tone(vocabulary.index(str(names[0])), seconds[name], rate)
                soundfile.write(str(folder / str(rate) / split / name), waveform, rate, subtype="PCM_16")
    return folder


def write_kfold_task(tasks: Path) -> Path:
    """`esc50-v2.0.0-full`: folds fold00..fold04, clip `{fold + 1}-{source}-A-{class}.wav` of class c in
    every fold (2 per class and fold, 50 clips)."""
    config = {
        "task_name": "esc50",
        "version": "v2.0.0",
        "embedding_type": "scene",
        "prediction_type": "multiclass",
        "sample_duration": KFOLD_SECONDS,
        "split_mode": "presplit_kfold",
        "nfolds": 5,
        "evaluation": ["top1_acc", "mAP", "d_prime", "aucroc"],
        "default_mode": "full",
        "max_task_duration_by_fold": None,
        "mode": "full",
        "splits": [f"fold{fold:02d}" for fold in range(5)],
    }
    labels = {
        f"fold{fold:02d}": {
            f"{fold + 1}-{100000 + 10 * c + j}-A-{c}.wav": [KFOLD_CLASSES[c]]
            for c in range(5)
            for j in range(2)
        }
        for fold in range(5)
    }
    seconds = {name: KFOLD_SECONDS for split in labels.values() for name in split}
    return write_task(tasks / "esc50-v2.0.0-full", config, labels, seconds, KFOLD_RATES)


MULTILABEL_SPLITS = {
    "train": {
        "1001.wav": (["Bark"], 0.3),
        "1002.wav": (["Bark", "Wind"], 1.3),
        "1003.wav": (["Bicycle_bell"], 0.75),
        "1004.wav": (["Walk, footsteps", "Wind"], 1.0),
        "1005.wav": (["Wind"], 0.5),
        "1006.wav": (["Walk, footsteps"], 1.1),
    },
    "valid": {"2001.wav": (["Bark"], 0.6), "2002.wav": (["Bicycle_bell", "Wind"], 0.9)},
    "test": {"3001.wav": (["Walk, footsteps"], 1.2), "3002.wav": (["Bark", "Bicycle_bell"], 0.4)},
}
"""The FSD50K-like task's clips: {split: {file: (labels, seconds)}}."""


def write_multilabel_task(tasks: Path) -> Path:
    """`fsd50k-v1.0-full`: train / valid / test of `MULTILABEL_SPLITS`, at 16000 Hz only."""
    config = {
        "task_name": "fsd50k",
        "version": "v1.0",
        "embedding_type": "scene",
        "prediction_type": "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": None,
        "evaluation": ["mAP", "d_prime", "aucroc", "top1_acc"],
        "default_mode": "full",
        "max_task_duration_by_split": {"train": None, "valid": None, "test": None},
        "mode": "full",
        "splits": ["train", "valid", "test"],
    }
    labels = {
        split: {name: names for name, (names, _) in clips.items()}
        for split, clips in MULTILABEL_SPLITS.items()
    }
    seconds = {name: length for clips in MULTILABEL_SPLITS.values() for name, (_, length) in clips.items()}
    return write_task(tasks / "fsd50k-v1.0-full", config, labels, seconds, (16000,))


def write_event_task(tasks: Path) -> Path:
    """`dcase2016_task2-hear2021-full`: an event task (labels are `{label, start, end}` records in ms)."""
    folder = tasks / "dcase2016_task2-hear2021-full"
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "task_name": "dcase2016_task2",
        "version": "hear2021",
        "embedding_type": "event",
        "prediction_type": "multilabel",
        "split_mode": "trainvaltest",
        "sample_duration": 120.0,
        "evaluation": ["event_onset_200ms_fms", "segment_1s_er"],
        "mode": "full",
        "splits": ["train", "valid", "test"],
    }
    (folder / "task_metadata.json").write_text(json.dumps(config, indent=True))
    events = {"00.wav": [{"label": "cough", "start": 1250.0, "end": 1800.5}]}
    (folder / "train.json").write_text(json.dumps(events, indent=True))
    return folder


def make(root: Path) -> dict:
    """The tiny k-fold task under `root/tasks`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_kfold_task(Path(root) / "tasks")), "batch_size": 4, "num_workers": 0}
