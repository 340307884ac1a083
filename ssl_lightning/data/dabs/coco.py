"""DABS's MS-COCO captions (Tamkin et al. 2021, `src/datasets/captioned_images/mscoco.py` at 7ee9a71): the
captioned-images pre-training set (`mscoco`) and its mismatched-caption transfer task (`mismatched_caption`),
as batches `{"image": float32 [B, 3, 224, 224], "text": int64 [B, 32], "label": ..., "clip_id": int64 [B]}`
(`captioned.py`).

Layout (DABS's `captioned_images/mscoco`, as the COCO 2017 zips unpack): `<root>/train2017/%012d.jpg`,
`<root>/val2017/%012d.jpg`, `<root>/annotations/captions_{train,val}2017.json` and
`instances_{train,val}2017.json`. Train = train2017, test = val2017 ("valid" serves test: DABS has no
validation split).

Items, per split as DABS makes them: one per image id, in the key order of `{c["image_id"]: c["caption"]}`
over the caption annotations (first appearance of each image id; the image's LAST caption wins), kept when
the image has an instance annotation; its category is that of the image's LAST instance annotation, mapped
to 0..79 in the order of the file's `categories` (single-label; DABS's online probe label).
`MismatchedCaptionDataModule` relabels the items by DABS's mismatched-caption rule
(`captioned.mismatched_captions`: seed 42, per split; one BCE output, 1 = the image's own caption).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ssl_lightning.data.dabs.base import DabsLabelType
from ssl_lightning.data.dabs.captioned import (
    CAPTION_LENGTH,
    DabsCaptionedDataModule,
    ImageFiles,
    json_fields,
    mismatched_captions,
    read_json,
)
from ssl_lightning.data.dabs.images import FULL
from ssl_lightning.data.dabs.text import dabs_tokenizer

COCO_FIX = (
    "download http://images.cocodataset.org/zips/train2017.zip, http://images.cocodataset.org/zips/"
    "val2017.zip and http://images.cocodataset.org/annotations/annotations_trainval2017.zip and unzip them "
    "into the root, so that it holds train2017/, val2017/ and annotations/ (captions_train2017.json, "
    "instances_train2017.json, ...)"
)


@dataclass(frozen=True)
class CocoSplit:
    """DABS's MSCOCO items of one split: the image folder, the items' file names in it, their captions,
    category labels (int64 [N]) and the category names in label order."""

    folder: Path
    files: list[str]
    captions: list[str]
    labels: Tensor
    classes: tuple[str, ...]


def read_coco_split(root: Path, split: str) -> CocoSplit:
    """The items of `split` ("train2017" or "val2017") under `root`, as DABS makes them (module docstring).

    Raises:
        FileNotFoundError: an annotation file or the image folder is missing.
        ValueError: a file lacks a key DABS reads, or an instance names a category it does not list.
    """
    instances_path = root / "annotations" / f"instances_{split}.json"
    captions_path = root / "annotations" / f"captions_{split}.json"
    instances = read_json(instances_path, COCO_FIX)
    with json_fields(instances_path):
        label_of = {category["id"]: label for label, category in enumerate(instances["categories"])}
        classes = tuple(category["name"] for category in instances["categories"])
        labels = {}
        for annotation in instances["annotations"]:
            if annotation["category_id"] not in label_of:
                raise ValueError(
                    f"{instances_path}: annotation {annotation.get('id')} has category_id "
                    f"{annotation['category_id']}, which its categories do not list"
                )
            labels[annotation["image_id"]] = label_of[annotation["category_id"]]
    with json_fields(captions_path):
        captions = {
            caption["image_id"]: caption["caption"]
            for caption in read_json(captions_path, COCO_FIX)["annotations"]
        }
    folder = root / split
    if not folder.is_dir():
        raise FileNotFoundError(f"the image folder {folder} is missing; {COCO_FIX}")
    kept = [image_id for image_id in captions if image_id in labels]
    return CocoSplit(
        folder,
        [f"{image_id:012d}.jpg" for image_id in kept],
        [captions[image_id] for image_id in kept],
        torch.tensor([labels[image_id] for image_id in kept], dtype=torch.int64),
        classes,
    )


class MSCOCODataModule(DabsCaptionedDataModule):
    """DABS's `mscoco`: captioned COCO 2017 images labelled by one of 80 categories (module docstring).

    Args:
        root: the folder holding train2017/, val2017/ and annotations/ (DABS's `captioned_images/mscoco`).
        tokenizer_dir: a Hugging Face tokenizer folder (bert-base-uncased for DABS's ids).
        vocab_size: size of the BPE trained on the train captions when there is no `tokenizer_dir`.
        tokenizer_cache: folder of that BPE (default under `$SSL_LIGHTNING_DATA/tokenizers/`).
        batch_size: items per batch (DABS: 64).
        num_workers: DataLoader workers (JPEG decoding needs several).
        seed: seed of the training shuffle.
    """

    label_type: DabsLabelType = "single"

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
        self.root = Path(root).expanduser()
        self.categories: tuple[str, ...] = ()

    @property
    def classes(self) -> tuple[str, ...]:
        """The 80 category names in label order (known after `setup`)."""
        return self.categories

    @property
    def canonical(self) -> bool:
        """DABS's splits always; DABS's ids only with a `tokenizer_dir` (bert-base-uncased's)."""
        return self.hparams.tokenizer_dir is not None

    @property
    def split_note(self) -> str:
        ids = "tokenizer_dir ids" if self.canonical else "offline BPE ids (not bert-base-uncased's)"
        return (
            f"COCO {self.root}/train2017 (train) and val2017 (test; valid = test: DABS has no valid split); "
            f"{ids}"
        )

    def labelled(self, split: CocoSplit) -> tuple[list[str], Tensor]:
        """The captions and labels served for `split`: its own captions and categories."""
        return split.captions, split.labels

    def load(self) -> None:
        """Read both splits and the tokenizer."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"MSCOCO root {self.root} does not exist; {COCO_FIX}")
        train, test = (read_coco_split(self.root, split) for split in ("train2017", "val2017"))
        self.categories = train.classes
        hp = self.hparams
        self.tokenizer = dabs_tokenizer(
            hp.tokenizer_dir, train.captions, hp.vocab_size, hp.tokenizer_cache, CAPTION_LENGTH
        )
        for name, split in (("train", train), ("test", test)):
            captions, labels = self.labelled(split)
            self.splits[name] = (
                ImageFiles(split.folder, split.files, COCO_FIX),
                [(c,) for c in captions],
                labels,
            )
        self.splits["valid"] = self.splits["test"]


class MismatchedCaptionDataModule(MSCOCODataModule):
    """DABS's `mismatched_caption`: the MSCOCO items of each split with about half of their captions rotated
    among themselves (`mismatched_captions`, seed 42); label float32 [1], 1 = the image's own caption, 0 = a
    swap candidate (whose caption is its own only in DABS's roll == k quirk). Arguments as
    `MSCOCODataModule`."""

    label_type: DabsLabelType = "multi"

    @property
    def classes(self) -> tuple[str, ...]:
        """One BCE output: ("match",)."""
        return ("match",)

    def labelled(self, split: CocoSplit) -> tuple[list[str], Tensor]:
        """The captions after DABS's swap and the match labels `[N, 1]`."""
        return mismatched_captions(split.captions)
