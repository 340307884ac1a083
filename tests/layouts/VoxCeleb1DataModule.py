"""Tiny copy of the VoxCeleb1 layout (`voxceleb1/`): `wav/<speaker>/<youtube id>/<nnnnn>.wav` of the dev and
test archives merged, and `iden_split.txt` (`<1|2|3> <speaker>/<youtube id>/<nnnnn>.wav` a line, sorted by
path as the real list).

Five speakers (three of the dev archive's id range, two of the test archive's), each with two YouTube ids
and five utterances: three train (4 s), one valid and one test, every speaker in all three splits as in
the real list. Valid and test utterances last 0.5, 3, 4, 7 and 9 s (1, 1, 2, 3 and 3 sub-clips of 3 s).
Audio is 16 kHz mono tones (the real files: 16 kHz mono speech, 4 s and longer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
SPEAKERS = ("id10001", "id10002", "id10003", "id10270", "id10271")
YOUTUBE_IDS = ("1zcIwhmdeo4", "7gWzIy6yIIk")
CODES = (1, 1, 2, 1, 3)
"""The split code of the five utterances of every speaker (three of the first video, two of the second)."""
EVAL_SECONDS = (0.5, 3.0, 4.0, 7.0, 9.0)
"""The length of the valid and of the test utterance of speaker i."""


def write_voxceleb1(root: Path) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    lines = []
    for s, speaker in enumerate(SPEAKERS):
        for n, code in enumerate(CODES, start=1):
            video, number = divmod(n - 1, 3)  # numbered within a video: 00001-00003, then 00001-00002
            entry = f"{speaker}/{YOUTUBE_IDS[video]}/{number + 1:05d}.wav"
            seconds = 4.0 if code == 1 else EVAL_SECONDS[s]
            t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            (root / "wav" / entry).parent.mkdir(parents=True, exist_ok=True)
            tone = 0.3 * np.sin(2 * np.pi * (150 + 50 * s) * t)
            soundfile.write(str(root / "wav" / entry), tone, SAMPLE_RATE, subtype="PCM_16")
            lines.append(f"{code} {entry}")
    (root / "iden_split.txt").write_text("".join(f"{line}\n" for line in sorted(lines, key=lambda x: x[2:])))
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_voxceleb1(Path(root) / "voxceleb1")), "batch_size": 4, "num_workers": 0}
