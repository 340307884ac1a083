"""Tiny copy of LibriSpeech dev-clean for the speaker task: `root/LibriSpeech/dev-clean/<speaker>/<chapter>/`
with `<speaker>-<chapter>-<utt:04d>.flac` utterances and `<speaker>-<chapter>.trans.txt`, as the real archive.

Three real dev-clean speakers with `UTTERANCES` per chapter: 1272 (4 + 3 = 7), 174 (4) and 84 (3 + 2 = 5), so
that the walker order (sorted stems: 1272, 174, 84) differs from the class order (ids as numbers: 84, 174,
1272). Walker indices: 1272 -> 0..6, 174 -> 7..10, 84 -> 11..15. Audio: the LibriSpeech layout's seeded
harmonic tones (16 kHz mono FLAC) of 0.1 to 0.2 s.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import soundfile

librispeech = runpy.run_path(str(Path(__file__).with_name("LibriSpeechDataModule.py")))
SAMPLE_RATE = librispeech["SAMPLE_RATE"]
UTTERANCES = {(1272, 128104): 4, (1272, 135031): 3, (174, 50561): 4, (84, 121123): 3, (84, 121550): 2}
"""Utterances per (speaker, chapter)."""


def write_dev_clean(root: Path) -> Path:
    """Write `root/LibriSpeech/dev-clean/...` and return the `LibriSpeech` folder."""
    base = Path(root) / "LibriSpeech"
    for seed, ((speaker, chapter), count) in enumerate(UTTERANCES.items()):
        folder = base / "dev-clean" / str(speaker) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for utt in range(count):
            uid = f"{speaker}-{chapter}-{utt:04d}"
            wave = librispeech["utterance"](0.1 + 0.05 * (utt % 3), 100 * seed + utt)
            soundfile.write(str(folder / f"{uid}.flac"), wave, SAMPLE_RATE, subtype="PCM_16")
            lines.append(f"{uid} {librispeech['TEXTS'][utt % 3]}\n")
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return base


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_dev_clean(root)), "batch_size": 4}
