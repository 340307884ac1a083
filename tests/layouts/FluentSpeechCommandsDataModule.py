"""Tiny copy of the Fluent Speech Commands layout (`fluent_speech_commands_dataset/`).

`data/{train,valid,test}_data.csv` as pandas wrote them (header `,path,speakerId,transcription,action,
object,location`, a leading row index, transcriptions quoted when they hold a comma) and
`wavs/speakers/<speakerId>/<uuid>.wav`. Speakers are disjoint across splits (4 train, 2 valid, 2 test).
Train has 28 utterances cycling through all real slot values (6 actions, 14 objects, 4 locations); valid
and test have 4 each, lasting 0.5, 3, 6 and 7 s (1, 1, 2 and 3 sub-clips of 3 s); train clips last 0.5 s.
Audio is 16 kHz mono tones (the real files: 16 kHz mono speech).
"""

from __future__ import annotations

import csv
import uuid
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
ACTIONS = ("change language", "activate", "deactivate", "increase", "decrease", "bring")
OBJECTS = ("none", "music", "lights", "volume", "heat", "lamp", "newspaper", "juice", "socks", "shoes")
OBJECTS += ("Chinese", "Korean", "English", "German")
LOCATIONS = ("none", "kitchen", "bedroom", "washroom")
SPEAKERS = {
    "train": ("2BqVo8kVB2Skwgyb", "2ojo7YRL7Gck83Z3", "35v28XaVEns4WXOv", "4aGjX3AG5xcxeL7a"),
    "valid": ("5o9BvRGEGvhaeBwA", "73bEEYMKLwtmVwV4"),
    "test": ("9EWlVBQo9rtqRYdy", "AY5e3mMgZkIyG3Ox"),
}
EVAL_SECONDS = (0.5, 3.0, 6.0, 7.0)
HEADER = ("", "path", "speakerId", "transcription", "action", "object", "location")


def _tone(seconds: float, frequency: float) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE)


def write_fluent(root: Path) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    namer = np.random.default_rng(0)
    for split, speakers in SPEAKERS.items():
        count = 28 if split == "train" else len(EVAL_SECONDS)
        rows = []
        for i in range(count):
            speaker = speakers[i % len(speakers)]
            action, obj, location = ACTIONS[i % 6], OBJECTS[i % 14], LOCATIONS[i % 4]
            path = f"wavs/speakers/{speaker}/{uuid.UUID(bytes=namer.bytes(16))}.wav"
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            seconds = 0.5 if split == "train" else EVAL_SECONDS[i]
            soundfile.write(str(root / path), _tone(seconds, 200 + 30 * i), SAMPLE_RATE, subtype="PCM_16")
            transcription = f"Okay, {action} {obj}" if i % 3 == 0 else f"{action} {obj} {location}"
            rows.append((i, path, speaker, transcription, action, obj, location))
        with open(root / "data" / f"{split}_data.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([HEADER, *rows])
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    path = write_fluent(Path(root) / "fluent_speech_commands_dataset")
    return {"root": str(path), "batch_size": 4, "num_workers": 0}
