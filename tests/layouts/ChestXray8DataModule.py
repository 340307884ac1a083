"""Tiny copy of NIH ChestX-ray8 as its archives unpack: `images/<patient>_<follow-up>.png` (the 12
`images_*.tar.gz` unpack into `images/`) next to `Data_Entry_2017.csv` (the real header, with its
trailing comma and the bracketed column names that split into two fields each).

`FINDINGS` holds the 10 images' `Finding Labels` (a `|`-separated list, `No Finding`, names outside the
8 DABS keeps) and two rows of images not downloaded. The images are PNGs of a few pixels, grayscale ("L")
of one grey level each, one RGBA (as some real ones), and `QUARTER` (00000004_000.png) 16 x 4 with its
left quarter black and the rest white. `images/notes.txt` is not an image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FINDINGS = {
    "00000001_000.png": "Cardiomegaly",
    "00000001_001.png": "Cardiomegaly|Emphysema",
    "00000001_002.png": "Cardiomegaly|Effusion",
    "00000002_000.png": "No Finding",
    "00000003_000.png": "Hernia",
    "00000003_001.png": "Infiltration|Mass|Nodule",
    "00000004_000.png": "Mass|Nodule",
    "00000005_000.png": "Pneumonia|Pneumothorax",
    "00000005_001.png": "Atelectasis|Pleural_Thickening",
    "00000006_000.png": "Consolidation|Edema|Effusion|Fibrosis",
}
NOT_DOWNLOADED = {"00000007_000.png": "Effusion", "00000008_000.png": "No Finding"}
QUARTER, RGBA = "00000004_000.png", "00000005_000.png"
HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"
)


def write_xray8(root: Path, metadata: str = "Data_Entry_2017.csv") -> Path:
    """Write `root/images/` and `root/<metadata>`; return `root`."""
    images = Path(root) / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    for index, (name, findings) in enumerate({**FINDINGS, **NOT_DOWNLOADED}.items()):
        patient, follow_up = (int(part) for part in name[:-4].split("_"))
        lines.append(f"{name},{findings},{follow_up},{patient},0{50 + index}Y,M,PA,2682,2749,0.143,0.143,")
        if name in NOT_DOWNLOADED:
            continue
        if name == QUARTER:
            pixels = np.full((4, 16), 255, np.uint8)
            pixels[:, :4] = 0
            image = Image.fromarray(pixels)
        else:
            image = Image.fromarray(np.full((6, 5 + index % 3), 10 + 20 * index, np.uint8))
        (image.convert("RGBA") if name == RGBA else image).save(images / name)
    (images / "notes.txt").write_text("not an image\n")
    (Path(root) / metadata).write_text("\n".join(lines) + "\n")
    return Path(root)


def make(root: Path) -> dict:
    """Write the tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    write_xray8(root)
    return {"root": str(root), "batch_size": 4, "num_workers": 0}
