"""Tiny copy of the NSynth layout (`nsynth/`): `nsynth-{train,valid,test}/examples.json` and `audio/*.wav`.

Each split has one instrument per family (11), with its own instrument numbers (no instrument is in two
splits, as in the real data): 2 notes each in train, 1 in valid and test (22 / 11 / 11 notes). A note is
`<family>_<source>_<nnn>-<pitch:03d>-<velocity:03d>`; its wav is a 4 s, 16 kHz tone at the note's MIDI
pitch, 3 s held then 1 s decay, like the real notes. examples.json is a dict keyed by note_str with the
13 fields of the real file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile

from ssl_lightning.data.audio.nsynth import FAMILIES

SAMPLE_RATE, SECONDS = 16000, 4.0
SOURCES = ("acoustic", "electronic", "synthetic")
QUALITIES = (
    *("bright", "dark", "distortion", "fast_decay", "long_release"),
    *("multiphonic", "nonlinear_env", "percussive", "reverb", "tempo-synced"),
)
VELOCITIES = (25, 50, 75, 100, 127)
NOTES_PER_INSTRUMENT = {"train": 2, "valid": 1, "test": 1}


def note_wave(pitch: int) -> np.ndarray:
    """A 4 s tone at MIDI `pitch`: held for 3 s, then decaying for 1 s."""
    t = np.arange(round(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.where(t < 3.0, 1.0, np.exp(-5.0 * (t - 3.0)))
    return 0.5 * envelope * np.sin(2 * np.pi * 440.0 * 2 ** ((pitch - 69) / 12) * t)


def write_nsynth(root: Path) -> Path:
    """Write the three split folders under `root` and return `root`."""
    root = Path(root)
    note_number = 0
    for s, (split, notes_per_instrument) in enumerate(NOTES_PER_INSTRUMENT.items()):
        audio = root / f"nsynth-{split}" / "audio"
        audio.mkdir(parents=True, exist_ok=True)
        examples = {}
        for family_index, family in enumerate(FAMILIES):
            instrument = 100 * s + family_index
            source_index = (family_index + s) % len(SOURCES)
            instrument_str = f"{family}_{SOURCES[source_index]}_{instrument:03d}"
            for j in range(notes_per_instrument):
                pitch, velocity = 21 + 7 * family_index + 12 * j + s, VELOCITIES[(family_index + j) % 5]
                note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
                qualities = [int(q == (family_index + j) % len(QUALITIES)) for q in range(len(QUALITIES))]
                examples[note_str] = {
                    "note_str": note_str,
                    "sample_rate": SAMPLE_RATE,
                    "qualities_str": [name for name, q in zip(QUALITIES, qualities, strict=True) if q],
                    "instrument_source": source_index,
                    "instrument_family_str": family,
                    "instrument_family": family_index,
                    "note": note_number,
                    "instrument_source_str": SOURCES[source_index],
                    "qualities": qualities,
                    "pitch": pitch,
                    "instrument_str": instrument_str,
                    "instrument": instrument,
                    "velocity": velocity,
                }
                note_number += 1
                wav = audio / f"{note_str}.wav"
                soundfile.write(str(wav), note_wave(pitch), SAMPLE_RATE, subtype="PCM_16")
        (root / f"nsynth-{split}" / "examples.json").write_text(json.dumps(examples, indent=4))
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_nsynth(Path(root) / "nsynth")), "batch_size": 4, "num_workers": 0}
