"""Tiny copy of CheXpert-v1.0-small as its zip unpacks: `CheXpert-v1.0-small/train.csv` and `valid.csv`
(header Path, Sex, Age, Frontal/Lateral, AP/PA, then the 14 observations; values 1.0, 0.0, -1.0 or blank,
lateral views with a blank AP/PA) and the grayscale JPEGs they list, `{train,valid}/patientNNNNN/studyK/
viewV_{frontal,lateral}.jpg`, a few pixels each (sizes differ; each is one grey level). The CSV paths
start with the folder name, so `root` is the folder that holds it.

`TRAIN` and `VALID` give each row's observations (the others are blank); the tests work out the labels
DABS keeps from them by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

OBSERVATIONS = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *OBSERVATIONS)

TRAIN = [
    (
        "train/patient00001/study1/view1_frontal.jpg",
        "Female,68,Frontal,AP",
        {"No Finding": "1.0", "Pneumothorax": "0.0", "Support Devices": "1.0"},
    ),
    (
        "train/patient00002/study2/view1_frontal.jpg",
        "Female,87,Frontal,AP",
        {
            "Cardiomegaly": "-1.0",
            "Lung Opacity": "1.0",
            "Edema": "-1.0",
            "Consolidation": "-1.0",
            "Atelectasis": "-1.0",
            "Pleural Effusion": "-1.0",
            "Fracture": "1.0",
        },
    ),
    (
        "train/patient00002/study1/view1_frontal.jpg",
        "Female,83,Frontal,AP",
        {"Lung Opacity": "1.0", "Atelectasis": "1.0", "Edema": "0.0", "Pleural Effusion": "1.0"},
    ),
    (
        "train/patient00003/study1/view1_frontal.jpg",
        "Male,41,Frontal,AP",
        {"Cardiomegaly": "1.0", "Consolidation": "1.0", "Edema": "-1.0"},
    ),
    (
        "train/patient00003/study1/view2_lateral.jpg",
        "Male,41,Lateral,",
        {"Edema": "1.0", "Pleural Effusion": "0.0", "Atelectasis": "0.0"},
    ),
    (
        "train/patient00004/study1/view1_frontal.jpg",
        "Female,20,Frontal,PA",
        {"Cardiomegaly": "1.0", "Edema": "1.0", "Pleural Effusion": "-1.0", "Pneumonia": "1.0"},
    ),
]
"""(path in the folder, Sex/Age/Frontal-Lateral/AP-PA, observations given) of `train.csv`'s rows."""
VALID = [
    (
        "valid/patient64541/study1/view1_frontal.jpg",
        "Male,73,Frontal,AP",
        {"Cardiomegaly": "1.0", "Lung Opacity": "1.0", "Support Devices": "1.0"},
    ),
    (
        "valid/patient64542/study1/view1_frontal.jpg",
        "Male,70,Frontal,PA",
        {"Atelectasis": "1.0", "Pleural Effusion": "1.0"},
    ),
    (
        "valid/patient64542/study1/view2_lateral.jpg",
        "Male,70,Lateral,",
        {"Atelectasis": "1.0", "Pleural Effusion": "1.0"},
    ),
    ("valid/patient64543/study1/view1_frontal.jpg", "Male,85,Frontal,AP", {"No Finding": "1.0"}),
]
"""`valid.csv`'s rows: every observation is 0.0 or 1.0 there (radiologist consensus), 0.0 unless given."""


def write_chexpert(root: Path, folder: str = "CheXpert-v1.0-small") -> Path:
    """Write `root/<folder>/` (CSVs and images); return the folder."""
    base = Path(root) / folder
    for split, rows, blank in (("train", TRAIN, ""), ("valid", VALID, "0.0")):
        lines = [",".join(HEADER)]
        for index, (path, person, given) in enumerate(rows):
            image = base / path
            image.parent.mkdir(parents=True, exist_ok=True)
            width, height = 6 + index, 5 + index % 3
            Image.fromarray(np.full((height, width), 20 + 30 * index, np.uint8)).save(image)
            values = [given.get(name, blank) for name in OBSERVATIONS]
            lines.append(",".join([f"{folder}/{path}", person, *values]))
        (base / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return base


def make(root: Path) -> dict:
    """Write the tiny layout under `root`; the `data.init_args` overrides that point a recipe at it."""
    write_chexpert(root)
    return {"root": str(root), "batch_size": 4, "num_workers": 0}
