"""DABS captioned images (Tamkin et al. 2021, `src/datasets/captioned_images/`): two inputs per item, an image
and a text, as batches `{"image": float32 [B, 3, S, S] in [0, 1], "text": int64 [B, 32], "label": ...,
"clip_id": int64 [B]}`.

The inputs, in DABS's order: `InputSpec("image", "2d", (224, 224), 16, 3)` and `InputSpec("text", "tokens",
32, vocab_size=V)`; `DabsTransformer` concatenates their 196 + 32 tokens. DABS's image transform, the same
in training and evaluation (no augmentation, no normalisation), is `coco_transform()`: `Resize((640, 480))`
(H 640, W 480: the aspect ratio is not kept), `CenterCrop((480, 480))` (the top and bottom 80 rows go),
`Resize((224, 224))`, `ToTensor()`. Texts become exactly 32 ids (truncated, padded; a pair `[CLS] a [SEP] b
[SEP]`, truncated longest first) by `tokenizer_dir` (bert-base-uncased's folder: DABS's ids, V = 30,522),
else by the offline byte-level BPE trained on the split's training texts (`text.py`; ids unlike DABS's).

- `coco.py`: MS-COCO 2017 captions, DABS's pre-training set (`mscoco`) and its mismatched-caption transfer
  task (`mismatched_caption`, `mismatched_captions` here).
- `vqa.py`: VQA v1 multiple choice as a binary task (`vqa`).
- `CaptionedDigitsDataModule` (here): the embedded stand-in, captioned scikit-learn digits.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from PIL import Image, UnidentifiedImageError
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordLevel
from torch import Tensor
from torch.utils.data import Dataset
from torchvision import transforms

from ssl_lightning.data.dabs.base import DabsDataModule, DabsLabelType, Mode
from ssl_lightning.data.dabs.images import SMALL
from ssl_lightning.data.dabs.text import BERT_PAD, fixed_length
from ssl_lightning.data.image.datamodule import TensorImages, stratified_split
from ssl_lightning.data.image.digits import DigitsDataModule, digits_images
from ssl_lightning.nn.input_specs import InputSpec

CAPTION_LENGTH = 32
"""Token ids per text (DABS's `SEQ_LEN`)."""
MISMATCH_SEED = 42
"""DABS's `random.seed(42)` before drawing the mismatched captions."""


def coco_transform() -> transforms.Compose:
    """DABS's captioned-image transform: PIL RGB image -> float32 `[3, 224, 224]` in [0, 1]."""
    return transforms.Compose(
        [
            transforms.Resize((640, 480)),
            transforms.CenterCrop((480, 480)),
            transforms.Resize((224, 224)),
            transforms.ToTensor(),
        ]
    )


def mismatched_captions(captions: list[str], seed: int = MISMATCH_SEED) -> tuple[list[str], Tensor]:
    """DABS's `MismatchedCaption.static_swap`: `(captions, labels float32 [N, 1])`.

    With `random.Random(seed)` (the draws of `random.seed(seed)`), each index in order is a swap candidate
    (label 0) when `random() < 0.5`, else keeps its caption (label 1); then `roll = randint(1, k)` for the k
    candidates, and candidate i takes the caption of candidate (i + roll) mod k. When roll == k (DABS's
    quirk, kept) every candidate keeps its own caption, labelled 0 all the same.

    Raises:
        ValueError: no index was drawn as a candidate (DABS's `randint(1, 0)` fails too).
    """
    rng = random.Random(seed)
    candidates = [index for index in range(len(captions)) if rng.random() < 0.5]
    if not candidates:
        raise ValueError(
            f"DABS's mismatched-caption draw (seed {seed}) chose no caption to swap among {len(captions)}; "
            "it needs a larger split"
        )
    roll = rng.randint(1, len(candidates))
    swapped = list(captions)
    for index, source in zip(candidates, candidates[roll:] + candidates[:roll], strict=True):
        swapped[index] = captions[source]
    labels = torch.ones(len(captions), 1)
    labels[candidates] = 0.0
    return swapped, labels


class Images(Protocol):
    """Images read by index: `image(index)` -> float32 `[3, S, S]` in [0, 1]."""

    def image(self, index: int) -> Tensor: ...


class ImageFiles:
    """The files `names` of `folder` read through `coco_transform()` (an `Images`); `fix` says how to get
    a missing one."""

    def __init__(self, folder: Path, names: list[str], fix: str) -> None:
        self.folder, self.names, self.fix, self.transform = folder, names, fix, coco_transform()

    def image(self, index: int) -> Tensor:
        """Image `index` as float32 `[3, 224, 224]` in [0, 1].

        Raises:
            FileNotFoundError: the file is missing.
            ValueError: the file is not an image PIL can read.
        """
        path = self.folder / self.names[index]
        if not path.is_file():
            raise FileNotFoundError(f"image {path} is missing; {self.fix}")
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (OSError, UnidentifiedImageError, ValueError) as error:
            raise ValueError(f"cannot decode image {path}: {error}; replace it ({self.fix})") from error
        return self.transform(image)


def read_json(path: Path, fix: str) -> Any:
    """The JSON document of `path`.

    Raises:
        FileNotFoundError: `path` is missing (the message ends with `fix`).
        ValueError: it is not JSON.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; {fix}")
    try:
        with path.open(encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); {fix}") from error


@contextmanager
def json_fields(path: Path) -> Iterator[None]:
    """Turn a key missing while reading `path`'s JSON into a ValueError naming the file and the key."""
    try:
        yield
    except KeyError as error:
        raise ValueError(f"{path} lacks the key {error} that DABS reads; is it the original file?") from error


class CaptionedItems(Dataset):
    """Items `{"image": float32 [3, S, S], "text": int64 [32], "label": tensor}`, the text (one string or a
    pair) encoded when read."""

    def __init__(
        self, images: Images, texts: list[tuple[str, ...]], labels: Tensor, tokenizer: Tokenizer
    ) -> None:
        self.images, self.texts, self.labels, self.tokenizer = images, texts, labels, tokenizer

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        ids = self.tokenizer.encode(*self.texts[index]).ids
        return {
            "image": self.images.image(index),
            "text": torch.tensor(ids, dtype=torch.int64),
            "label": self.labels[index],
        }


SplitItems = tuple[Images, list[tuple[str, ...]], Tensor]
"""One split's images, texts and labels (item i: image i, texts[i], labels[i])."""


class DabsCaptionedDataModule(DabsDataModule):
    """Base of the captioned-image datamodules: the `"image"` and `"text"` inputs (module docstring); both
    views are the same items. Subclasses' `load()` sets `tokenizer` and `splits` (every split in
    `SPLITS`, "valid" = "test" where DABS has no validation split).

    Args:
        size: (image side S, patch side): `images.FULL` (224, 16) or `images.SMALL` (32, 4).
        batch_size, num_workers, seed: see `DabsDataModule`.
    """

    def __init__(self, size: tuple[int, int], batch_size: int, num_workers: int, seed: int) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.image_size, self.patch_size = size
        self.tokenizer: Tokenizer | None = None
        self.splits: dict[str, SplitItems] = {}

    @property
    def input_specs(self) -> list[InputSpec]:
        """`[InputSpec("image", "2d", (S, S), patch, 3), InputSpec("text", "tokens", 32, vocab_size=V)]`
        (V known after `setup`)."""
        if self.tokenizer is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before asking for input_specs")
        side = self.image_size
        return [
            InputSpec("image", "2d", (side, side), self.patch_size, 3),
            InputSpec("text", "tokens", CAPTION_LENGTH, vocab_size=self.tokenizer.get_vocab_size()),
        ]

    def make_dataset(self, split: str, mode: Mode) -> CaptionedItems:
        """`{"image", "text", "label"}` items of `split` (the same for both modes, as DABS)."""
        assert self.tokenizer is not None  # load() ran
        return CaptionedItems(*self.splits[split], self.tokenizer)


DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION_TEMPLATES = (
    "a handwritten {word}",
    "the digit {number} written by hand",
    "a small grey picture of the number {word}",
    "a scanned {number}",
    "someone wrote the digit {word}",
)
"""Caption templates of the digits stand-in; each names the digit as a word or a numeral."""
CAPTION_SPECIALS = (BERT_PAD, "[UNK]", "[CLS]", "[SEP]")


def digit_caption(template: int, digit: int) -> str:
    """`CAPTION_TEMPLATES[template]` naming `digit`."""
    return CAPTION_TEMPLATES[template].format(word=DIGIT_WORDS[digit], number=digit)


def caption_tokenizer() -> Tokenizer:
    """The digits stand-in's word-level tokenizer: `[PAD] [UNK] [CLS] [SEP]` (ids 0..3), then the sorted words
    of every caption (`CAPTION_VOCAB_SIZE` ids in all); `[CLS] caption [SEP]` padded to 32 ids."""
    words = sorted(
        {
            word
            for t in range(len(CAPTION_TEMPLATES))
            for d in range(10)
            for word in digit_caption(t, d).split()
        }
    )
    vocab = {token: index for index, token in enumerate((*CAPTION_SPECIALS, *words))}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return fixed_length(tokenizer, CAPTION_LENGTH)


CAPTION_VOCAB_SIZE = caption_tokenizer().get_vocab_size()
"""Ids of the digits stand-in's tokenizer (its recipes' `vocab_size`)."""


class CaptionedDigitsDataModule(DabsCaptionedDataModule):
    """Embedded stand-in of DABS's captioned images: scikit-learn's 1797 digits as `_small`-style images
    (3 x 32 x 32, 4 x 4 patches, `DabsDigitsDataModule`'s images and stratified split, seeded by `seed`),
    each with an English caption naming its digit (`CAPTION_TEMPLATES`, one drawn per image by
    `random.Random(seed)` in `load_digits()` order) as 32 word-level ids (`caption_tokenizer`).

    `task` picks the label: "digit", the digit class (single-label, 10 classes: the pre-training set's online
    label, as DABS's MSCOCO categories); or "mismatched_caption", DABS's mismatched-caption rule
    (`mismatched_captions`, seed 42, on each split in order) as one BCE output, 1 = the caption is the
    image's own. A rotated caption names a digit of its own, which is the image's digit about one time in
    ten: such a pair is labelled 0 all the same (DABS's rule does not look at the captions). With the
    default split and seed, 55 of the 610 label-0 train pairs (9.0%), 8 of 135 valid (5.9%) and 18 of 135
    test (13.3%) name the image's digit; every label-1 pair names it.

    Args:
        task: "digit" or "mismatched_caption".
        batch_size: items per batch (DABS's `mscoco`: 64).
        num_workers: DataLoader workers.
        seed: seed of the split, the caption templates, the training shuffle and draws.
        split_fractions: train/valid/test fractions (sum 1).
    """

    canonical = False

    def __init__(
        self,
        task: Literal["digit", "mismatched_caption"] = "digit",
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
        split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    ) -> None:
        super().__init__(SMALL, batch_size, num_workers, seed)
        self.save_hyperparameters()
        if task not in ("digit", "mismatched_caption"):
            raise ValueError(
                f"CaptionedDigitsDataModule: task must be 'digit' or 'mismatched_caption', got {task!r}"
            )
        if len(split_fractions) != 3 or min(split_fractions) <= 0 or abs(sum(split_fractions) - 1) > 1e-6:
            raise ValueError(
                f"CaptionedDigitsDataModule: split_fractions must be 3 positive train/valid/test fractions "
                f"summing to 1, got {split_fractions!r}"
            )
        self.task, self.split_fractions = task, tuple(split_fractions)

    @property
    def label_type(self) -> DabsLabelType:
        """ "single" (digit classes) or "multi" with one class (the mismatched-caption BCE output)."""
        return "single" if self.task == "digit" else "multi"

    @property
    def classes(self) -> tuple[str, ...]:
        """The digits, or ("match",): label 1 = the caption is the image's own."""
        return DigitsDataModule.classes if self.task == "digit" else ("match",)

    @property
    def split_note(self) -> str:
        """Where the splits come from."""
        shares = "/".join(f"{round(100 * share)}" for share in self.split_fractions)
        rule = "; DABS's mismatched-caption rule (seed 42) per split" if self.task != "digit" else ""
        return (
            f"captioned scikit-learn digits (not a DABS data set): stratified {shares} train/valid/test "
            f"split, seed {self.seed}{rule}"
        )

    def load(self) -> None:
        """Make the images and captions of every split."""
        images, digits = digits_images(self.image_size)
        rng = random.Random(self.seed)
        captions = [digit_caption(rng.randrange(len(CAPTION_TEMPLATES)), int(d)) for d in digits]
        self.tokenizer = caption_tokenizer()
        for split, ids in stratified_split(digits.numpy(), self.split_fractions, self.seed).items():
            texts, labels = [captions[i] for i in ids], digits[ids]
            if self.task == "mismatched_caption":
                texts, labels = mismatched_captions(texts)
            self.splits[split] = (TensorImages(images[ids], digits[ids]), [(t,) for t in texts], labels)
