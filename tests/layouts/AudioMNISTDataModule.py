"""Tiny copy of the AudioMNIST layout (`AudioMNIST-master/`, github.com/soerenab/AudioMNIST):
`data/<NN>/<digit>_<NN>_<index>.wav` and `data/audioMNIST_meta.txt`.

Seven speakers, some of each of DABS's lists (`SPEAKERS`), each saying every digit `REPETITIONS` times
(indices 0, 2 and 10: sorted by name, 10 comes before 2). Clips are 48 kHz mono 16-bit wavs
as the real ones, tones of `200 + 50 * digit` Hz lasting `SECONDS[index]`, much shorter than the real
~0.6 s; the meta file is JSON with the real file's keys for the speakers written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 48000
SPEAKERS = {"train": (28, 1, 3), "valid": (12, 4), "test": (26, 5)}
"""Speakers written, per DABS list, in the list's order."""
REPETITIONS = (0, 2, 10)
SECONDS = {0: 0.05, 2: 0.1, 10: 0.15}


def digit_tone(digit: int, seconds: float, seed: int) -> np.ndarray:
    """A `200 + 50 * digit` Hz tone with a little seeded noise."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    noise = np.random.default_rng(seed).standard_normal(t.size)
    return 0.3 * np.sin(2 * np.pi * (200 + 50 * digit) * t) + 0.01 * noise


def write_audio_mnist(root: Path) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    meta = {}
    for speaker in sorted(s for speakers in SPEAKERS.values() for s in speakers):
        folder = root / "data" / f"{speaker:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for digit in range(10):
            for index in REPETITIONS:
                wave = digit_tone(digit, SECONDS[index], seed=1000 * speaker + 100 * digit + index)
                soundfile.write(
                    str(folder / f"{digit}_{speaker:02d}_{index}.wav"), wave, SAMPLE_RATE, "PCM_16"
                )
        meta[f"{speaker:02d}"] = {
            "accent": "German",
            "age": "25",
            "gender": "male",
            "native speaker": "no",
            "origin": "Europe, Germany, Berlin",
            "recordingdate": "17-06-22-11-04-28",
            "recordingroom": "Kino",
        }
    (root / "data" / "audioMNIST_meta.txt").write_text(json.dumps(meta, indent=4))
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_audio_mnist(Path(root) / "AudioMNIST-master")), "batch_size": 4}
