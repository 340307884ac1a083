"""Tiny copies of DABS's captioned-image layouts: MS-COCO 2017 (`write_coco`: `annotations/captions_*`,
`instances_*`, `{train,val}2017/%012d.jpg`) and VQA v1 (`write_vqa`: `coco-vqa/` with the COCO 2014 captions'
image lists, the multiple-choice questions and the answers), and a bert-base-uncased style vocabulary
(`write_bert_vocab`). Not a datamodule layout: the recipe tests skip it; tests load it with runpy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

VOCAB = (
    "[PAD] [UNK] [CLS] [SEP] [MASK] a the dog runs man walking red car what color is it ? blue green yes no "
    "how many one two three four cat bird"
).split()
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def write_bert_vocab(folder: Path) -> Path:
    """A bert-base-uncased style folder: vocab.txt only (id = line number)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return folder


def write_jpeg(path: Path, height: int, width: int, bands: list[tuple[slice, slice, tuple]]) -> None:
    """A blue `height` x `width` JPEG with the `(rows, columns, colour)` bands painted."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[...] = BLUE
    for rows, columns, colour in bands:
        pixels[rows, columns] = colour
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95, subsampling=0)


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


CATEGORIES = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]


def write_coco(root: Path) -> Path:
    """COCO 2017's layout. train2017: captions of images 9, 42, 5, 9 (again), 7; instances of 42 (dog, then
    person), 7 (car), 9 (car, then dog) and 100 (no caption). val2017: captions of 4, 3, 3; instances 3 (car),
    4 (person)."""
    notes = root / "annotations"
    instances = [(42, 18), (7, 3), (42, 1), (9, 3), (100, 1), (9, 18)]
    write_json(
        notes / "instances_train2017.json",
        {
            "categories": CATEGORIES,
            "annotations": [
                {"id": i, "image_id": image, "category_id": c} for i, (image, c) in enumerate(instances)
            ],
        },
    )
    captions = [(9, "A dog on grass."), (42, "a man walking"), (5, "an empty room"), (9, "the dog runs"),
                (7, "a red car")]  # fmt: skip
    write_json(
        notes / "captions_train2017.json",
        {
            "annotations": [
                {"id": i, "image_id": image, "caption": c} for i, (image, c) in enumerate(captions)
            ]
        },
    )
    write_json(
        notes / "instances_val2017.json",
        {
            "categories": CATEGORIES,
            "annotations": [
                {"id": 0, "image_id": 3, "category_id": 3},
                {"id": 1, "image_id": 4, "category_id": 1},
            ],
        },
    )
    write_json(
        notes / "captions_val2017.json",
        {"annotations": [{"image_id": 4, "caption": "a man"}, {"image_id": 3, "caption": "a red car"},
                         {"image_id": 3, "caption": "the red car"}]},
    )  # fmt: skip
    # 480 wide, 640 high: the top and bottom 80 rows red, cut by the 480 x 480 center crop.
    everything = slice(None)
    red_bands = [(slice(0, 80), everything, RED), (slice(560, None), everything, RED)]
    write_jpeg(root / "train2017/000000000009.jpg", 640, 480, red_bands)
    # 48 wide, 64 high, stretched 10x to 480 x 640: the red top and bottom 8 rows go, the green left quarter
    # stays.
    bands = [
        (slice(0, 8), everything, RED),
        (slice(56, None), everything, RED),
        (slice(8, 56), slice(0, 12), GREEN),
    ]
    write_jpeg(root / "train2017/000000000042.jpg", 64, 48, bands)
    for path in ("train2017/000000000007.jpg", "val2017/000000000003.jpg", "val2017/000000000004.jpg"):
        write_jpeg(root / path, 40, 30, {})
    return root


def write_vqa(root: Path) -> Path:
    """VQA v1's layout under `root/coco-vqa`: 7 train annotations (one answer not among its choices), one
    val annotation with a question too long for 32 ids."""
    folder = root / "coco-vqa"
    images = [{"id": 9, "file_name": "COCO_train2014_000000000009.jpg"},
              {"id": 25, "file_name": "COCO_train2014_000000000025.jpg"}]  # fmt: skip
    write_json(folder / "annotations/captions_train2014.json", {"images": images, "annotations": []})
    what, yes_no, count = ["dog", "cat", "bird"], ["yes", "no"], ["one", "two", "three", "four"]
    questions = [(90, "what color is it?", ["red", "blue", "green"]), (91, "is it a dog?", yes_no),
                 (250, "is it a man?", yes_no), (251, "how many dogs?", count), (252, "what is it?", what),
                 (253, "what is it?", what), (254, "is it red?", yes_no)]  # fmt: skip
    write_json(
        folder / "MultipleChoice_mscoco_train2014_questions.json",
        {"questions": [{"question_id": q, "question": t, "multiple_choices": c} for q, t, c in questions]},
    )
    answers = [(90, 9, "red"), (91, 9, "maybe"), (250, 25, "yes"), (251, 25, "two"), (252, 9, "cat"),
               (253, 25, "dog"), (254, 9, "no")]  # fmt: skip
    write_json(
        folder / "mscoco_train2014_annotations.json",
        {
            "annotations": [
                {"question_id": q, "image_id": i, "multiple_choice_answer": a} for q, i, a in answers
            ]
        },
    )
    write_json(folder / "annotations/captions_val2014.json", {"images": [{"id": 3, "file_name": "v3.jpg"}]})
    write_json(
        folder / "MultipleChoice_mscoco_val2014_questions.json",
        {"questions": [{"question_id": 30, "question": "is the " + "dog " * 40, "multiple_choices": yes_no}]},
    )
    write_json(
        folder / "mscoco_val2014_annotations.json",
        {"annotations": [{"question_id": 30, "image_id": 3, "multiple_choice_answer": "yes"}]},
    )
    for path in ("train2014/COCO_train2014_000000000009.jpg", "train2014/COCO_train2014_000000000025.jpg",
                 "val2014/v3.jpg"):  # fmt: skip
        write_jpeg(folder / path, 30, 40, {})
    return root
