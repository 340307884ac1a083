"""Tiny copy of the ESC-50 layout (`ESC-50-master/`): `meta/esc50.csv` and `audio/*.wav`.

All 50 targets (named `category_00` ... `category_49`), `clips_per_class` clips each, spread over
the 5 folds (clip j of target c is in fold (c + j) % 5 + 1, so 2 clips a class give 20 clips a
fold). Clips are 0.25 s tones at 44.1 kHz (the real ones: 5 s at 44.1 kHz), named like the real
files `{fold}-{src_file}-{take}-{target}.wav`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile

NUM_CLASSES, NUM_FOLDS, SAMPLE_RATE, SECONDS = 50, 5, 44100, 0.25
COLUMNS = ("filename", "fold", "target", "category", "esc10", "src_file", "take")


def write_esc50(root: Path, clips_per_class: int = 2) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "audio").mkdir(exist_ok=True)
    t = np.arange(round(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    rows = []
    for target in range(NUM_CLASSES):
        for j in range(clips_per_class):
            fold, src_file = (target + j) % NUM_FOLDS + 1, 100000 + 10 * target + j
            filename = f"{fold}-{src_file}-A-{target}.wav"
            tone = 0.5 * np.sin(2 * np.pi * (200 + 40 * target) * t)
            soundfile.write(str(root / "audio" / filename), tone, SAMPLE_RATE, subtype="PCM_16")
            rows.append((filename, fold, target, f"category_{target:02d}", target < 10, src_file, "A"))
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *rows])
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_esc50(Path(root) / "ESC-50-master")), "batch_size": 4, "num_workers": 0}
