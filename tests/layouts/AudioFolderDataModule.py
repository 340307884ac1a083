"""Tiny folder of audio files in nested sub-folders: wav, FLAC and ogg (Vorbis) endings in both cases,
16 kHz mono, lasting 0.25 s (shorter than the tiny overlay's min_sample_size), 0.75 s or 1.5 s (longer
than its max_sample_size) in turn; plus files the loader must skip (a text file, a `.mp3`-named one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
FILES = (
    "a/clip0.wav",
    "a/clip1.flac",
    "a/b/clip2.ogg",
    "a/b/clip3.WAV",
    "c/clip4.FLAC",
    "c/clip5.wav",
    "c/d/e/clip6.flac",
    "clip7.wav",
    "clip8.ogg",
    "c/clip9.wav",
)
SECONDS = (0.25, 0.75, 1.5)
SKIPPED = ("a/notes.txt", "c/song.mp3")


def write_audio_folder(root: Path) -> Path:
    """Write the files under `root` and return it."""
    root = Path(root)
    for i, name in enumerate(FILES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(round(SECONDS[i % len(SECONDS)] * SAMPLE_RATE)) / SAMPLE_RATE
        wave = 0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t)
        subtype = "VORBIS" if name.lower().endswith(".ogg") else "PCM_16"
        soundfile.write(str(path), wave, SAMPLE_RATE, subtype=subtype)
    for name in SKIPPED:
        (root / name).write_text("not audio\n")
    return root


def make(root: Path) -> dict:
    """The tiny folder under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_audio_folder(root)), "valid_fraction": 0.2}
