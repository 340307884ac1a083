"""Tiny copy of the Birdsong layout (`birdsong/`): the three DCASE 2018 Task 3 development corpora, each
`wav/<itemid>.wav` next to its metadata CSV (comma-separated, header `itemid,datasetid,hasbird`).

`clips_per_corpus` clips a corpus, hasbird alternating 0, 1, 0, ...; item ids shaped like the real ones
(ff1010bird: integers, the others hex ids). Clip j is a tone of 1, 1.5 or 2.5 s (j % 3) at 8 kHz, so it
has 1, 2 or 3 one-second sub-clips (the real clips: 10 s at 44.1 kHz mono).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import soundfile

SAMPLE_RATE = 8000
SECONDS = (1.0, 1.5, 2.5)
CORPORA = {
    "ff1010bird": ("ff1010bird_metadata_2018.csv", "ff1010bird"),
    "warblrb10k": ("warblrb10k_public_metadata_2018.csv", "warblrb10k"),
    "BirdVox-DCASE-20k": ("BirdVoxDCASE20k_csvpublic.csv", "BirdVox-DCASE-20k"),
}
"""Corpus folder -> (metadata CSV, datasetid)."""


def item_id(corpus: str, j: int) -> str:
    """The j-th item id of `corpus`: an integer for ff1010bird, a hex id like the others' otherwise."""
    if corpus == "ff1010bird":
        return str(1000 + 37 * j)
    digest = hashlib.md5(f"{corpus}{j}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def write_corpus(root: Path, corpus: str, clips_per_corpus: int = 10) -> list[tuple[str, str, int]]:
    """Write one corpus folder under `root`; its CSV rows (itemid, datasetid, hasbird)."""
    csv_name, datasetid = CORPORA[corpus]
    (root / corpus / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for j in range(clips_per_corpus):
        itemid, hasbird = item_id(corpus, j), j % 2
        t = np.arange(round(SECONDS[j % 3] * SAMPLE_RATE)) / SAMPLE_RATE
        tone = 0.5 * np.sin(2 * np.pi * (300 + 500 * hasbird) * t)
        soundfile.write(str(root / corpus / "wav" / f"{itemid}.wav"), tone, SAMPLE_RATE, subtype="PCM_16")
        rows.append((itemid, datasetid, hasbird))
    with open(root / corpus / csv_name, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([("itemid", "datasetid", "hasbird"), *rows])
    return rows


def write_birdsong(root: Path, corpora: tuple[str, ...] = tuple(CORPORA), clips_per_corpus: int = 10) -> Path:
    """Write the layout (the corpora `corpora`) under `root` and return `root`."""
    root = Path(root)
    for corpus in corpora:
        write_corpus(root, corpus, clips_per_corpus)
    return root


def make(root: Path) -> dict:
    """The tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    return {"root": str(write_birdsong(Path(root) / "birdsong")), "batch_size": 4, "num_workers": 0}
