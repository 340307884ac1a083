"""DABS's VQA transfer task (Tamkin et al. 2021, `src/datasets/captioned_images/vqa.py` at 7ee9a71): VQA v1
multiple choice as a binary task, batches `{"image": float32 [B, 3, 224, 224], "text": int64 [B, 32],
"label": float32 [B, 1], "clip_id": int64 [B]}` (`captioned.py`).

Layout (DABS's `captioned_images/vqa`): `<root>/coco-vqa/` holding `{train,val}2014/` (COCO 2014 images),
`annotations/captions_{split}2014.json` (only its `images`: id -> file_name),
`mscoco_{split}2014_annotations.json` (`annotations`: question_id, image_id, multiple_choice_answer) and
`MultipleChoice_mscoco_{split}2014_questions.json` (`questions`: question_id, question, multiple_choices).
Train = train2014, test = val2014 ("valid" serves test: DABS has no validation split).

Items, in the order of the annotations: an annotation whose answer is not among its question's choices is
dropped; each kept one, with probability 1/2, takes a wrong answer drawn uniformly from the other choices
(label 0), else keeps its answer (label 1). The text is the pair (question, answer): `[CLS] question [SEP]
answer [SEP]`, 32 ids truncated longest first. DABS draws with the unseeded global `random`, so its labels
change from run to run; here each split draws from its own `random.Random(seed)` (one `random()` per kept
annotation, then `choice` of the others when swapped, as DABS's calls).
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from torch import Tensor

from ssl_lightning.data.dabs.base import DabsLabelType
from ssl_lightning.data.dabs.captioned import (
    CAPTION_LENGTH,
    DabsCaptionedDataModule,
    ImageFiles,
    json_fields,
    read_json,
)
from ssl_lightning.data.dabs.images import FULL
from ssl_lightning.data.dabs.text import dabs_tokenizer

VQA_FIX = (
    "download VQA v1 (https://visualqa.org/vqa_v1_download.html: the multiple-choice questions "
    "Questions_{Train,Val}_mscoco.zip and the annotations Annotations_{Train,Val}_mscoco.zip) and COCO 2014 "
    "(http://images.cocodataset.org/zips/train2014.zip, val2014.zip and "
    "http://images.cocodataset.org/annotations/annotations_trainval2014.zip), and unzip them into "
    "<root>/coco-vqa/ (train2014/, val2014/, annotations/captions_train2014.json, "
    "mscoco_train2014_annotations.json, MultipleChoice_mscoco_train2014_questions.json, ... for val)"
)


def read_vqa_split(folder: Path, split: str, seed: int) -> tuple[list[str], list[tuple[str, str]], Tensor]:
    """`(image file names, (question, answer) pairs, labels float32 [N, 1])` of `split` ("train" or "val")
    in the `coco-vqa` folder, answers swapped with `random.Random(seed)` (module docstring).

    Raises:
        FileNotFoundError: a JSON file or the image folder is missing.
        ValueError: a file lacks a key DABS reads, an annotation's question or image is not listed, or a
            swapped question has no other choice.
    """
    images_path = folder / "annotations" / f"captions_{split}2014.json"
    annotations_path = folder / f"mscoco_{split}2014_annotations.json"
    questions_path = folder / f"MultipleChoice_mscoco_{split}2014_questions.json"
    with json_fields(images_path):
        files = {image["id"]: image["file_name"] for image in read_json(images_path, VQA_FIX)["images"]}
    with json_fields(questions_path):
        questions = {
            question["question_id"]: (question["question"], question["multiple_choices"])
            for question in read_json(questions_path, VQA_FIX)["questions"]
        }
    if not (folder / f"{split}2014").is_dir():
        raise FileNotFoundError(f"the image folder {folder / f'{split}2014'} is missing; {VQA_FIX}")
    rng = random.Random(seed)
    names, texts, labels = [], [], []
    with json_fields(annotations_path):
        for annotation in read_json(annotations_path, VQA_FIX)["annotations"]:
            question_id, image_id = annotation["question_id"], annotation["image_id"]
            if question_id not in questions:
                raise ValueError(f"{annotations_path}: question_id {question_id} is not in {questions_path}")
            question, choices = questions[question_id]
            answer, label = annotation["multiple_choice_answer"], 1.0
            if answer not in choices:
                continue
            if image_id not in files:
                raise ValueError(f"{annotations_path}: image_id {image_id} is not in {images_path}")
            if rng.random() < 0.5:
                others = [choice for choice in choices if choice != answer]
                if not others:
                    raise ValueError(f"{questions_path}: question {question_id} has no choice but {answer!r}")
                answer, label = rng.choice(others), 0.0
            names.append(files[image_id])
            texts.append((question, answer))
            labels.append(label)
    return names, texts, torch.tensor(labels, dtype=torch.float32)[:, None]


class VQADataModule(DabsCaptionedDataModule):
    """DABS's `vqa` (module docstring): one BCE output, 1 = the answer is right.

    Args:
        root: the folder holding `coco-vqa/` (DABS's `captioned_images/vqa`).
        tokenizer_dir: a Hugging Face tokenizer folder (bert-base-uncased for DABS's ids).
        vocab_size: size of the BPE trained on the train questions and answers when there is no
            `tokenizer_dir`.
        tokenizer_cache: folder of that BPE (default under `$SSL_LIGHTNING_DATA/tokenizers/`).
        batch_size: items per batch (DABS: 64).
        num_workers: DataLoader workers (JPEG decoding needs several).
        seed: seed of the answer swaps (each split's `random.Random(seed)`) and of the training shuffle.
    """

    label_type: DabsLabelType = "multi"
    classes = ("correct",)

    def __init__(
        self,
        root: str,
        tokenizer_dir: str | None = None,
        vocab_size: int = 8000,
        tokenizer_cache: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(FULL, batch_size, num_workers, seed)
        self.save_hyperparameters()
        self.folder = Path(root).expanduser() / "coco-vqa"

    @property
    def canonical(self) -> bool:
        """DABS's splits always (its swaps are unseeded: no run reproduces another's); DABS's ids only with a
        `tokenizer_dir` (bert-base-uncased's)."""
        return self.hparams.tokenizer_dir is not None

    @property
    def split_note(self) -> str:
        ids = "tokenizer_dir ids" if self.canonical else "offline BPE ids (not bert-base-uncased's)"
        return (
            f"VQA v1 multiple choice in {self.folder}: train2014 (train), val2014 (test; valid = test: DABS "
            f"has no valid split), answers swapped with random.Random({self.seed}) (DABS's are unseeded); "
            f"{ids}"
        )

    def load(self) -> None:
        """Read both splits and the tokenizer."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"the VQA folder {self.folder} does not exist; {VQA_FIX}")
        for name, split in (("train", "train"), ("test", "val")):
            files, texts, labels = read_vqa_split(self.folder, split, self.seed)
            self.splits[name] = (ImageFiles(self.folder / f"{split}2014", files, VQA_FIX), texts, labels)
        hp = self.hparams
        train_texts = [text for pair in self.splits["train"][1] for text in pair]
        self.tokenizer = dabs_tokenizer(
            hp.tokenizer_dir, train_texts, hp.vocab_size, hp.tokenizer_cache, CAPTION_LENGTH
        )
        self.splits["valid"] = self.splits["test"]
