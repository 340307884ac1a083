"""Tiny copy of an AudioSet download: the official CSVs and an `audio/` folder named by YouTube ID.

`class_labels_indices.csv` lists 527 classes (synthetic mids `/m/0t000` ... and names; class 1's
name holds a comma, as real names do). The segment CSVs keep the real format (3 `#` lines, then
`YTID, start, end, "mid,mid"`): 6 balanced, 6 unbalanced and 4 eval segments, labelled with 1-3 of
the first 6 classes (class 0, like "Speech", on most clips). The audio files follow the three naming
conventions the loader accepts, one per folder, at different rates, 0.5 s each:

    audio/bal_train/Y<YTID>.wav                (44.1 kHz)
    audio/unbal_train/<YTID>_30.000_40.000.flac (32 kHz)
    audio/eval/<YTID>.wav                      (16 kHz)

plus a non-audio file that the index ignores. YouTube IDs are 11 characters of [A-Za-z0-9_-]; some
start with Y, -, or hold _ to exercise the name matching.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile

NUM_CLASSES = 527
MIDS = tuple(f"/m/0t{i:03d}" for i in range(NUM_CLASSES))
LABELS = ((0,), (0, 1), (2,), (0, 3), (4, 5), (0, 1, 2))
"""Class indices of the i-th segment of each CSV (cycled)."""
PARTS = {
    # part: (segment CSV, audio folder, clips, file-name pattern, sample rate)
    "balanced": ("balanced_train_segments.csv", "bal_train", 6, "Y{ytid}.wav", 44100),
    "unbalanced": ("unbalanced_train_segments.csv", "unbal_train", 6, "{ytid}_30.000_40.000.flac", 32000),
    "eval": ("eval_segments.csv", "eval", 4, "{ytid}.wav", 16000),
}
HEADER = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids={n}, num_segs={n}, num_unique_labels=6, num_positive_labels={p}\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
)


def ytid(part: str, i: int) -> str:
    """The 11-character YouTube ID of segment i of `part` (e.g. `Yb-0_xPq7aZ` for balanced 0)."""
    return f"Y{part[0]}-{i}_xPq7aZ" if i % 2 == 0 else f"-{part[:2]}{i}_Zq7aXy"


def write_audioset(root: Path) -> Path:
    """Write the CSVs under `root` and the audio under `root/audio`; return `root`."""
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    with open(root / "class_labels_indices.csv", "w", newline="") as handle:
        names = [f"Sound {i}" if i != 1 else "Male speech, man speaking" for i in range(NUM_CLASSES)]
        csv.writer(handle).writerows(
            [("index", "mid", "display_name"), *zip(range(NUM_CLASSES), MIDS, names, strict=True)]
        )
    for part, (csv_name, folder, count, pattern, rate) in PARTS.items():
        (root / "audio" / folder).mkdir(exist_ok=True)
        labels = [LABELS[i % len(LABELS)] for i in range(count)]
        rows = [
            f'{ytid(part, i)}, 30.000, 40.000, "{",".join(MIDS[c] for c in classes)}"\n'
            for i, classes in enumerate(labels)
        ]
        header = HEADER.format(n=count, p=sum(len(classes) for classes in labels))
        (root / csv_name).write_text(header + "".join(rows))
        t = np.arange(rate // 2) / rate
        for i in range(count):
            tone = 0.5 * np.sin(2 * np.pi * (300 + 70 * i) * t)
            soundfile.write(str(root / "audio" / folder / pattern.format(ytid=ytid(part, i))), tone, rate)
    (root / "audio" / "README.txt").write_text("downloaded with yt-dlp\n")
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_audioset(Path(root) / "audioset")), "batch_size": 4, "num_workers": 0}
