"""Tiny copy of the Speech Commands downloads as HARES lays them out: `speech_commands_v0.02/` and
`speech_commands_test_set_v0.02/` side by side (each archive unpacked into its own folder).

`speech_commands_v0.02/` holds the 35 word folders with one clip from each of 3 speakers
(`<speaker>_nohash_0.wav`; speaker 1's clips are in `validation_list.txt`, speaker 2's in
`testing_list.txt`, speaker 0's are train), and `_background_noise_/` with 3 of the real noise file
names (white_noise 2.5 s, pink_noise 3.2 s, running_tap 2.0 s: 3, 5 and 2 TFDS windows) and the
README.md the real folder has. Word clips last 1 s, except every third word's (0.6 s: real clips can
be short). A test archive holds the 12 class folders of the v1 task with 2 clips each (`_unknown_`
clips are named `<word>_<speaker>_nohash_<n>.wav` as in the real archive). Everything is 16 kHz mono.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from ssl_lightning.data.audio.speech_commands import BACKGROUND, V1_CLASSES, V2_CLASSES

SAMPLE_RATE = 16000
SPEAKERS = ("0a1b2c3d", "1f2e3d4c", "9e8d7c6b")
"""Speaker hashes: index 0 train, 1 valid, 2 test."""
NOISE_SECONDS = {"white_noise.wav": 2.5, "pink_noise.wav": 3.2, "running_tap.wav": 2.0}


def _tone(path: Path, seconds: float, frequency: float) -> str:
    """Write a tone to `path` and return its name."""
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    soundfile.write(str(path), 0.5 * np.sin(2 * np.pi * frequency * t), SAMPLE_RATE, subtype="PCM_16")
    return path.name


def noise(seconds: float, seed: int) -> np.ndarray:
    """A background recording: uniform noise of `seconds` at 16 kHz."""
    return np.random.default_rng(seed).uniform(-0.3, 0.3, round(seconds * SAMPLE_RATE))


def write_speech_commands(root: Path, words: tuple[str, ...] = V2_CLASSES) -> Path:
    """Write the word folders, lists and background noise of `words` under `root`; return `root`."""
    root = Path(root)
    lists: dict[int, list[str]] = {1: [], 2: []}
    for w, word in enumerate(words):
        (root / word).mkdir(parents=True, exist_ok=True)
        for s, speaker in enumerate(SPEAKERS):
            name = _tone(root / word / f"{speaker}_nohash_0.wav", 0.6 if w % 3 == 0 else 1.0, 200 + 50 * w)
            if s in lists:
                lists[s].append(f"{word}/{name}")
    (root / "validation_list.txt").write_text("".join(f"{entry}\n" for entry in lists[1]))
    (root / "testing_list.txt").write_text("".join(f"{entry}\n" for entry in lists[2]))
    (root / BACKGROUND).mkdir(exist_ok=True)
    (root / BACKGROUND / "README.md").write_text("Background noise recordings, see the paper.\n")
    for i, (name, seconds) in enumerate(NOISE_SECONDS.items()):
        soundfile.write(str(root / BACKGROUND / name), noise(seconds, i), SAMPLE_RATE, subtype="PCM_16")
    return root


def write_test_set(root: Path, clips_per_class: int = 2) -> Path:
    """Write a v1 test archive's 12 class folders under `root`; return `root`."""
    root = Path(root)
    for c, name in enumerate(V1_CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(clips_per_class):
            prefix = "bed_" if name == "_unknown_" else ""
            _tone(root / name / f"{prefix}{SPEAKERS[i]}_nohash_{i}.wav", 1.0, 300 + 60 * c)
    return root


def make(root: Path) -> dict:
    """The HARES layout under `root/speech_commands`; the `data.init_args` overrides pointing at it."""
    base = Path(root) / "speech_commands"
    write_speech_commands(base / "speech_commands_v0.02")
    write_test_set(base / "speech_commands_test_set_v0.02")
    return {"root": str(base), "batch_size": 4, "num_workers": 0}
