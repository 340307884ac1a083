"""Tiny copy of the MagnaTagATune layout (`magnatagatune/`): `annotations_final.csv` and mp3 folders 0-f.

`annotations_final.csv` is written as the real one: tab-separated, every field double-quoted, CRLF line
ends, the header "clip_id", the 188 tag names in the real file's order, "mp3_path", rows in clip_id
order. Each folder 0-9, a-f holds 2 clips (32): 16 kHz mono mp3 tones of 4 s (even clips) or 7 s (odd
clips), the real ones lasting about 29 s. Clip n carries the 3 header tags from position 6n (mod 188),
so some clips have no top-50 tag. The 3 clips musicnn-training leaves out are there too, under their
real clip_id and path, as the empty files of the real download (35 rows in all).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 16000
FOLDERS = "0123456789abcdef"
TAGS = (
    *("no voice", "singer", "duet", "plucking", "hard rock", "world", "bongos", "harpsichord"),
    *("female singing", "clasical", "sitar", "chorus", "female opera", "male vocal", "vocals", "clarinet"),
    *("heavy", "silence", "beats", "men", "woodwind", "funky", "no strings", "chimes", "foreign"),
    *("no piano", "horns", "classical", "female", "no voices", "soft rock", "eerie", "spacey", "jazz"),
    *("guitar", "quiet", "no beat", "banjo", "electric", "solo", "violins", "folk", "female voice"),
    *("wind", "happy", "ambient", "new age", "synth", "funk", "no singing", "middle eastern", "trumpet"),
    *("percussion", "drum", "airy", "voice", "repetitive", "birds", "space", "strings", "bass"),
    *("harpsicord", "medieval", "male voice", "girl", "keyboard", "acoustic", "loud", "classic"),
    *("string", "drums", "electronic", "not classical", "chanting", "no violin", "not rock"),
    *("no guitar", "organ", "no vocal", "talking", "choral", "weird", "opera", "soprano", "fast"),
    *("acoustic guitar", "electric guitar", "male singer", "man singing", "classical guitar", "country"),
    *("violin", "electro", "reggae", "tribal", "dark", "male opera", "no vocals", "irish", "electronica"),
    *("horn", "operatic", "arabic", "lol", "low", "instrumental", "trance", "chant", "strange", "drone"),
    *("synthesizer", "heavy metal", "modern", "disco", "bells", "man", "deep", "fast beat", "industrial"),
    *("hard", "harp", "no flute", "jungle", "pop", "lute", "female vocal", "oboe", "mellow", "orchestral"),
    *("viola", "light", "echo", "piano", "celtic", "male vocals", "orchestra", "eastern", "old", "flutes"),
    *("punk", "spanish", "sad", "sax", "slow", "male", "blues", "vocal", "indian", "no singer", "scary"),
    *("india", "woman", "woman singing", "rock", "dance", "piano solo", "guitars", "no drums", "jazzy"),
    *("singing", "cello", "calm", "female vocals", "voices", "different", "techno", "clapping", "house"),
    *("monks", "flute", "not opera", "not english", "oriental", "beat", "upbeat", "soft", "noise"),
    *("choir", "female singer", "rap", "metal", "hip hop", "quick", "water", "baroque", "women"),
    *("fiddle", "english"),
)
"""The 188 tag columns of the real annotations_final.csv, in file order."""
BROKEN = {
    35644: "6/norine_braun-now_and_zen-08-gently-117-146.mp3",
    55753: "8/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster-204-233.mp3",
    57881: (
        "9/american_baroque-dances_and_suites_of_rameau_and_couperin-25-"
        "le_petit_rien_xiveme_ordre_couperin-88-117.mp3"
    ),
}
"""The clips musicnn-training's partition_gt.py leaves out, written as empty files."""


def clip_tags(n: int) -> tuple[str, ...]:
    """The tags of clip n: 3 consecutive header tags from position 6n."""
    return tuple(TAGS[(6 * n + k) % len(TAGS)] for k in range(3))


def clip_seconds(n: int) -> float:
    return 4.0 if n % 2 == 0 else 7.0


def write_magnatagatune(root: Path) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    rows = []
    for f, folder in enumerate(FOLDERS):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for j in range(2):
            n = 2 * f + j
            mp3_path = f"{folder}/artist_{folder}-album_{j}-{j + 1:02d}-title_{n}-{29 * j}-{29 * j + 29}.mp3"
            t = np.arange(round(clip_seconds(n) * SAMPLE_RATE)) / SAMPLE_RATE
            tone = 0.5 * np.sin(2 * np.pi * (200 + 30 * n) * t)
            soundfile.write(str(root / mp3_path), tone, SAMPLE_RATE, format="MP3")
            rows.append((2 + 4 * n, clip_tags(n), mp3_path))
    for clip_id, mp3_path in BROKEN.items():
        (root / mp3_path).touch()
        rows.append((clip_id, (), mp3_path))
    with open(root / "annotations_final.csv", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(("clip_id", *TAGS, "mp3_path"))
        for clip_id, tags, mp3_path in sorted(rows):
            writer.writerow((clip_id, *(int(tag in tags) for tag in TAGS), mp3_path))
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_magnatagatune(Path(root) / "magnatagatune")), "batch_size": 4, "num_workers": 0}
