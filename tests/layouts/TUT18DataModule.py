"""Tiny copy of the TUT Urban Acoustic Scenes 2018 development layout
(`TUT-urban-acoustic-scenes-2018-development/`): `meta.csv` (TAB-separated, with header), `audio/*.wav`
and `evaluation_setup/fold1_{train,evaluate,test}.txt` (no header).

All 10 scenes, each recorded at one location in each of 4 cities (location number = scene index, so the
identifier is e.g. `barcelona-3`), 2 segments a location: 80 files. London is fold1_evaluate, the other
cities fold1_train (location-disjoint, like the real fold). Segment 0 lasts 5.5 s (2 five-second
sub-clips), segment 1 3 s (1), as 24-bit stereo at 2 kHz (the real files: 10 s, 48 kHz, 24-bit stereo).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

SCENES = (
    *("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall"),
    *("street_pedestrian", "street_traffic", "tram"),
)
CITIES, EVALUATE_CITY = ("barcelona", "helsinki", "lisbon", "london"), "london"
SAMPLE_RATE, SECONDS = 2000, (5.5, 3.0)


def write_tut18(root: Path) -> Path:
    """Write the layout under `root` and return `root`."""
    root = Path(root)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    (root / "evaluation_setup").mkdir(exist_ok=True)
    meta, train, evaluate = ["filename\tscene_label\tidentifier\tsource_label"], [], []
    for index, scene in enumerate(SCENES):
        for city in CITIES:
            for segment, seconds in enumerate(SECONDS):
                name = f"audio/{scene}-{city}-{index}-{segment}-a.wav"
                t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
                tone = 0.4 * np.sin(2 * np.pi * (100 + 50 * index) * t)
                soundfile.write(
                    str(root / name), np.stack([tone, 0.5 * tone], 1), SAMPLE_RATE, subtype="PCM_24"
                )
                meta.append(f"{name}\t{scene}\t{city}-{index}\ta")
                (evaluate if city == EVALUATE_CITY else train).append(f"{name}\t{scene}")
    (root / "meta.csv").write_text("".join(f"{line}\n" for line in meta))
    for fold_list, lines in (("fold1_train.txt", train), ("fold1_evaluate.txt", evaluate)):
        (root / "evaluation_setup" / fold_list).write_text("".join(f"{line}\n" for line in lines))
    test = "".join(f"{line.split(chr(9))[0]}\n" for line in evaluate)
    (root / "evaluation_setup" / "fold1_test.txt").write_text(test)
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    path = write_tut18(Path(root) / "TUT-urban-acoustic-scenes-2018-development")
    return {"root": str(path), "batch_size": 4, "num_workers": 0}
