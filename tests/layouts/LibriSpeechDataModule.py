"""Tiny copy of the LibriSpeech layout: `root/LibriSpeech/<subset>/<speaker>/<chapter>/`.

Subsets train-clean-100, train-clean-360, train-other-500 and dev-clean, each with 2 speakers of one
chapter and 3 utterances `<speaker>-<chapter>-<utt:04d>.flac` (16 kHz mono FLAC, harmonic tones with
noise) plus `<speaker>-<chapter>.trans.txt` with one `<utterance id> <TEXT>` line per utterance, as in
the real archives. Utterances last `SECONDS` in turn: 0.25 s (shorter than the tiny overlay's
min_sample_size), 0.75 s and 1.5 s (longer than its max_sample_size).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
SUBSETS = {
    "train-clean-100": ((19, 198), (26, 495)),
    "train-clean-360": ((100, 121669), (1001, 134707)),
    "train-other-500": ((20, 205), (1006, 135212)),
    "dev-clean": ((84, 121123), (174, 50561)),
}
"""(speaker, chapter) pairs per subset."""
SECONDS = (0.25, 0.75, 1.5)
TEXTS = (
    "CHAPTER ONE MISSUS RACHEL LYNDE IS SURPRISED",
    "THE SUN HAD SET AND THE WIND WAS COLD ON THE HILL",
    "HE SAID THAT HE WOULD COME BACK BEFORE THE WINTER",
)


def utterance(seconds: float, seed: int) -> np.ndarray:
    """A harmonic tone with a little noise, seeded."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = rng.uniform(100, 250)
    wave = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 4))
    return 0.3 * wave / 2 + 0.01 * rng.standard_normal(t.size)


def write_librispeech(root: Path) -> Path:
    """Write the subsets under `root/LibriSpeech/` and return that folder."""
    base = Path(root) / "LibriSpeech"
    seed = 0
    for subset, pairs in SUBSETS.items():
        for speaker, chapter in pairs:
            folder = base / subset / str(speaker) / str(chapter)
            folder.mkdir(parents=True, exist_ok=True)
            lines = []
            for utt, (seconds, text) in enumerate(zip(SECONDS, TEXTS, strict=True)):
                uid = f"{speaker}-{chapter}-{utt:04d}"
                soundfile.write(
                    str(folder / f"{uid}.flac"), utterance(seconds, seed), SAMPLE_RATE, subtype="PCM_16"
                )
                lines.append(f"{uid} {text}\n")
                seed += 1
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return base


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_librispeech(root))}
