"""DABS captioned images: MSCOCO (items, last caption / last instance, categories), mismatched captions
(DABS's seed-42 rotation and its roll quirk), VQA (answers not among the choices dropped, seeded swaps,
question-answer pairs), DABS's 640 x 480 / 480 crop / 224 transform, errors, and the captioned-digits
stand-in (its labels, its honest mismatch rate, a short e-Mix fit and DABS's linear evaluation)."""

import random
import re
import runpy
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.data.dabs.captioned import DIGIT_WORDS, CaptionedDigitsDataModule, mismatched_captions
from ssl_lightning.data.dabs.coco import MismatchedCaptionDataModule, MSCOCODataModule
from ssl_lightning.data.dabs.images import DabsDigitsDataModule
from ssl_lightning.data.dabs.vqa import VQADataModule
from ssl_lightning.eval.evaluate import SuiteRunner
from ssl_lightning.eval.probe import DABS_PROBE
from ssl_lightning.eval.suites import Suite, SuiteTask
from ssl_lightning.methods import EMix
from ssl_lightning.nn.input_specs import InputSpec

layouts = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "captioned.py")))
VOCAB, RED, GREEN, BLUE, CATEGORIES = (
    layouts.VOCAB,
    layouts.RED,
    layouts.GREEN,
    layouts.BLUE,
    layouts.CATEGORIES,
)
write_bert_vocab, write_coco, write_vqa = layouts.write_bert_vocab, layouts.write_coco, layouts.write_vqa
write_json = layouts.write_json

ID = {token: index for index, token in enumerate(VOCAB)}
PAD, CLS, SEP = ID["[PAD]"], ID["[CLS]"], ID["[SEP]"]

# The first draws of random.Random(42), i.e. of DABS's `random.seed(42); random.random()`, and the roll
# `randint(1, k)` that follows n draws (checked against Python in the first test).
DRAWS_42 = [0.6394267984578837, 0.025010755222666936, 0.27502931836911926, 0.22321073814882275,
            0.7364712141640124, 0.6766994874229113, 0.8921795677048454]  # fmt: skip
ROLL_AFTER = {2: (1, 1), 3: (2, 1), 4: (3, 3), 7: (3, 1)}
"""n -> (k candidates among the first n draws, randint(1, k) drawn next)."""


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    """A bert-base-uncased style folder: vocab.txt only (id = line number)."""
    return write_bert_vocab(tmp_path / "bert")


def test_mismatch_draws_are_dabs_seed_42():
    state = random.getstate()
    random.seed(42)
    assert [random.random() for _ in DRAWS_42] == DRAWS_42
    random.setstate(state)
    for n, (k, roll) in ROLL_AFTER.items():
        rng = random.Random(42)
        assert sum(rng.random() < 0.5 for _ in range(n)) == k and rng.randint(1, k) == roll


def test_mismatched_captions_rotate_the_candidates_by_the_roll():
    # 7 draws: candidates 1, 2, 3 (< 0.5); roll 1: 1 <- 2, 2 <- 3, 3 <- 1.
    captions, labels = mismatched_captions(list("abcdefg"))
    assert captions == list("acdbefg")
    assert labels.dtype == torch.float32 and labels.shape == (7, 1)
    assert labels[:, 0].tolist() == [1, 0, 0, 0, 1, 1, 1]
    captions, labels = mismatched_captions(list("abc"))  # candidates 1, 2; roll 1
    assert captions == list("acb") and labels[:, 0].tolist() == [1, 0, 0]


def test_mismatched_captions_roll_of_k_keeps_captions_labelled_zero():
    # 4 draws: candidates 1, 2, 3 and randint(1, 3) = 3: the rotation is the identity (DABS's quirk).
    captions, labels = mismatched_captions(list("abcd"))
    assert captions == list("abcd") and labels[:, 0].tolist() == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="chose no caption to swap among 1"):
        mismatched_captions(["a"])  # 0.639: no candidate, DABS's randint(1, 0) fails


def test_mscoco_items_last_caption_last_instance_and_category_order(tmp_path, bert_dir):
    root = write_coco(tmp_path / "mscoco")
    data = MSCOCODataModule(str(root), tokenizer_dir=str(bert_dir), batch_size=2)
    data.setup()
    assert data.input_specs == [
        InputSpec("image", "2d", (224, 224), 16, 3),
        InputSpec("text", "tokens", 32, vocab_size=len(VOCAB)),
    ]
    assert data.classes == ("person", "car", "dog") and data.label_type == "single" and data.canonical
    assert "val2017 (test; valid = test" in data.split_note
    files, texts, labels = data.splits["train"][0].names, data.splits["train"][1], data.splits["train"][2]
    assert files == ["000000000009.jpg", "000000000042.jpg", "000000000007.jpg"]
    assert texts == [("the dog runs",), ("a man walking",), ("a red car",)]
    assert labels.tolist() == [2, 0, 1] and labels.dtype == torch.int64
    assert data.splits["test"][1] == [("a man",), ("the red car",)] and data.splits["test"][2].tolist() == [
        0,
        1,
    ]
    assert data.dataset("valid", "subclips")[1]["text"][:5].tolist() == [
        CLS,
        ID["the"],
        ID["red"],
        ID["car"],
        SEP,
    ]
    item = data.dataset("train", "random_crop")[0]
    assert item["text"].dtype == torch.int64 and item["text"].shape == (32,)
    assert (
        item["text"][:5].tolist() == [CLS, ID["the"], ID["dog"], ID["runs"], SEP]
        and item["text"][5:].eq(PAD).all()
    )
    assert item["image"].shape == (3, 224, 224) and item["image"].dtype == torch.float32
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"image", "text", "label", "clip_id"} and batch["text"].shape == (2, 32)


def test_coco_transform_stretches_to_640_by_480_and_crops_top_and_bottom(tmp_path, bert_dir):
    data = MSCOCODataModule(str(write_coco(tmp_path / "mscoco")), tokenizer_dir=str(bert_dir))
    data.setup()
    tall = data.dataset("train", "subclips")[0]["image"]  # 480 x 640: only the blue middle is left
    assert tall[2].min() > 0.9 and tall[0].max() < 0.1 and tall[1].max() < 0.1
    small = data.dataset("train", "subclips")[1]["image"]  # 48 x 64: red gone, the green quarter kept
    assert small[0, 3:-3].max() < 0.05 and small[0].max() < 0.5  # a plain resize: 28 red rows each end
    assert small[1, 4:-4, :48].min() > 0.8 and small[2, 4:-4, :48].max() < 0.2  # 56 = 224 / 4 green columns
    assert small[2, 4:-4, 64:].min() > 0.8 and small[1, 4:-4, 64:].max() < 0.2


def test_mismatched_caption_applies_the_rule_per_split_with_the_roll_quirk(tmp_path, bert_dir):
    data = MismatchedCaptionDataModule(str(write_coco(tmp_path / "mscoco")), tokenizer_dir=str(bert_dir))
    data.setup()
    assert data.label_type == "multi" and data.classes == ("match",) and data.num_classes == 1
    # train, 3 items: candidates 1, 2 and roll 1, so items 1 and 2 trade captions.
    assert data.splits["train"][1] == [("the dog runs",), ("a red car",), ("a man walking",)]
    assert data.splits["train"][2][:, 0].tolist() == [1, 0, 0]
    # test, 2 items: candidate 1 alone, roll = 1 = k: its own caption, labelled 0 (DABS's quirk).
    assert data.splits["test"][1] == [("a man",), ("the red car",)]
    assert data.splits["test"][2][:, 0].tolist() == [1, 0]
    item = data.dataset("train", "subclips")[1]
    assert item["label"].dtype == torch.float32 and item["label"].tolist() == [0.0]
    assert item["text"][:5].tolist() == [CLS, ID["a"], ID["red"], ID["car"], SEP]


def test_coco_errors_name_the_file_and_the_download(tmp_path, bert_dir):
    with pytest.raises(FileNotFoundError, match=r"MSCOCO root .*nowhere does not exist.*zips/train2017\.zip"):
        MSCOCODataModule(str(tmp_path / "nowhere")).setup()
    root = write_coco(tmp_path / "mscoco")
    (root / "annotations/captions_val2017.json").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"captions_val2017\.json is missing.*annotations_trainval2017"
    ):
        MSCOCODataModule(str(root), tokenizer_dir=str(bert_dir)).setup()
    write_json(root / "annotations/captions_val2017.json", {"annotations": [{"image_id": 4}]})
    with pytest.raises(ValueError, match=r"captions_val2017\.json lacks the key 'caption'"):
        MSCOCODataModule(str(root), tokenizer_dir=str(bert_dir)).setup()
    notes = {"categories": CATEGORIES, "annotations": [{"id": 5, "image_id": 3, "category_id": 2}]}
    write_json(root / "annotations/instances_val2017.json", notes)
    with pytest.raises(ValueError, match=r"instances_val2017\.json: annotation 5 has category_id 2"):
        MSCOCODataModule(str(root), tokenizer_dir=str(bert_dir)).setup()
    root = write_coco(tmp_path / "again")
    (root / "train2017/000000000042.jpg").unlink()
    data = MSCOCODataModule(str(root), tokenizer_dir=str(bert_dir))
    data.setup()
    with pytest.raises(FileNotFoundError, match=r"000000000042\.jpg is missing.*zips/train2017\.zip"):
        data.dataset("train", "subclips")[1]


def test_vqa_drops_answers_not_in_choices_and_swaps_with_the_seed(tmp_path, bert_dir):
    data = VQADataModule(str(write_vqa(tmp_path / "vqa")), tokenizer_dir=str(bert_dir), batch_size=3)
    data.setup()
    assert data.label_type == "multi" and data.classes == ("correct",) and data.canonical
    assert data.input_specs[1] == InputSpec("text", "tokens", 32, vocab_size=len(VOCAB))
    # random.Random(0): 0.844 keep (90), no draw for 91 (dropped), 0.758 keep (250), 0.421 swap (251):
    # choice of (one, three, four) -> three; 0.965 keep (252); 0.486 swap (253): choice of (cat, bird) ->
    # bird; 0.968 keep (254).
    images, texts, labels = data.splits["train"]
    assert texts == [("what color is it?", "red"), ("is it a man?", "yes"), ("how many dogs?", "three"),
                     ("what is it?", "cat"), ("what is it?", "bird"), ("is it red?", "no")]  # fmt: skip
    assert labels.dtype == torch.float32 and labels[:, 0].tolist() == [1, 1, 0, 1, 0, 1]
    assert images.names == ["COCO_train2014_000000000009.jpg", *["COCO_train2014_000000000025.jpg"] * 2,
                            "COCO_train2014_000000000009.jpg", "COCO_train2014_000000000025.jpg",
                            "COCO_train2014_000000000009.jpg"]  # fmt: skip
    pair = data.dataset("train", "subclips")[2]["text"]
    expected = [CLS, ID["how"], ID["many"], ID["[UNK]"], ID["?"], SEP, ID["three"], SEP]
    assert pair.shape == (32,) and pair[:8].tolist() == expected and pair[8:].eq(PAD).all()
    long = data.dataset("test", "subclips")[0]["text"]  # longest first: 28 of the question's 42 tokens
    assert long.tolist() == [CLS, ID["is"], ID["the"], *[ID["dog"]] * 26, SEP, ID["yes"], SEP]
    other = VQADataModule(str(tmp_path / "vqa"), tokenizer_dir=str(bert_dir), seed=1)
    other.setup()
    assert other.splits["train"][2][:, 0].tolist() != labels[:, 0].tolist()
    truth = {"what color is it?": "red", "is it a man?": "yes", "how many dogs?": "two", "is it red?": "no"}
    for (question, answer), label in zip(
        other.splits["train"][1], other.splits["train"][2][:, 0], strict=True
    ):
        if question in truth:
            assert (answer == truth[question]) == (label == 1)


def test_vqa_errors_name_the_file_and_the_download(tmp_path, bert_dir):
    with pytest.raises(FileNotFoundError, match=r"VQA folder .*coco-vqa does not exist.*visualqa\.org"):
        VQADataModule(str(tmp_path)).setup()
    root = write_vqa(tmp_path / "vqa")
    (root / "coco-vqa/mscoco_val2014_annotations.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"mscoco_val2014_annotations\.json is missing.*Annotations_"):
        VQADataModule(str(root), tokenizer_dir=str(bert_dir)).setup()
    write_json(
        root / "coco-vqa/mscoco_val2014_annotations.json",
        {"annotations": [{"question_id": 31, "image_id": 3, "multiple_choice_answer": "yes"}]},
    )
    with pytest.raises(ValueError, match=r"question_id 31 is not in .*MultipleChoice_mscoco_val2014"):
        VQADataModule(str(root), tokenizer_dir=str(bert_dir)).setup()


def named_digit(caption: str) -> int:
    """The digit a stand-in caption names (as a word or a numeral), read independently of the templates."""
    (word,) = re.findall(r"\b(?:\d|" + "|".join(DIGIT_WORDS) + r")\b", caption)
    return int(word) if word.isdigit() else DIGIT_WORDS.index(word)


def test_captioned_digits_are_the_dabs_digits_with_captions_naming_them():
    data = CaptionedDigitsDataModule(batch_size=8)
    data.setup()
    reference = DabsDigitsDataModule()
    reference.setup()
    assert data.input_specs == [
        InputSpec("image", "2d", (32, 32), 4, 3),
        InputSpec("text", "tokens", 32, vocab_size=39),
    ]
    assert data.label_type == "single" and data.num_classes == 10 and not data.canonical
    for split in ("train", "valid", "test"):
        ours, theirs = data.dataset(split, "subclips"), reference.dataset(split, "subclips")
        assert len(ours) == len(theirs)
        for index in (0, len(ours) - 1):
            torch.testing.assert_close(ours[index]["image"], theirs[index]["image"])
            assert ours[index]["label"].item() == theirs[index]["label"].item()
        _, texts, labels = data.splits[split]
        assert [named_digit(text) for (text,) in texts] == labels.tolist()
    # The word ids: [PAD] [UNK] [CLS] [SEP], then the 35 caption words sorted (0-9, a, by, digit, ..., zero).
    first = data.dataset("train", "subclips")[0]
    assert random.Random(0).randrange(5) == 3  # load_digits()[0], a 0 in train, gets template 3
    assert data.splits["train"][1][0] == ("a scanned 0",)
    assert first["text"].tolist() == [2, 14, 28, 4, 3] + [0] * 27  # [CLS] a scanned 0 [SEP] [PAD] ...


def test_captioned_digits_mismatch_labels_and_their_honest_rate():
    data = CaptionedDigitsDataModule(task="mismatched_caption")
    data.setup()
    digits = CaptionedDigitsDataModule()
    digits.setup()
    assert data.label_type == "multi" and data.classes == ("match",)
    same_digit = {}
    for split in ("train", "valid", "test"):
        images, texts, labels = data.splits[split]
        own = digits.splits[split][1]
        assert sorted(texts) == sorted(own)  # the captions are rotated among the split's items
        match = labels[:, 0] == 1
        assert all((texts[i] == own[i]) for i in torch.nonzero(match)[:, 0].tolist())
        zero = torch.nonzero(~match)[:, 0].tolist()
        same_digit[split] = (sum(named_digit(texts[i][0]) == images.labels[i] for i in zero), len(zero))
    # Label-0 pairs whose rotated caption names the image's digit (the docstring's numbers).
    assert same_digit == {"train": (55, 610), "valid": (8, 135), "test": (18, 135)}
    item = data.dataset("test", "subclips")[0]
    assert item["label"].dtype == torch.float32 and item["label"].shape == (1,)
    with pytest.raises(ValueError, match="task must be 'digit' or 'mismatched_caption'"):
        CaptionedDigitsDataModule(task="vqa")


def test_emix_fits_on_captioned_digits_and_dabs_probe_scores_mismatch_accuracy():
    torch.manual_seed(0)
    data = CaptionedDigitsDataModule(batch_size=8)
    data.setup()
    encoder = DabsTransformer(data.input_specs, dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32, out_dim=8)
    assert encoder.num_tokens == 64 + 32
    method = EMix(encoder)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(method, datamodule=data)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])

    def datamodule(task, root=None, fold=None, **kwargs):
        return CaptionedDigitsDataModule(task="mismatched_caption", **kwargs)

    task = SuiteTask("mismatched_caption_digits", "images & text", "accuracy", probe_batch_size=64)
    suite = Suite("captioned", {task.name: task}, datamodule, probe=DABS_PROBE, canonical_only=False)
    runner = SuiteRunner(suite, batch_size=64, device="cpu", progress=False)
    (result,) = runner.probe_model("emix", method)
    assert result.metric == "accuracy" and 0.0 <= result.value <= 1.0
    assert (result.num_train, result.num_test) == (1257, 270)


def test_without_a_tokenizer_dir_the_offline_bpe_of_the_train_texts_serves_32_ids(tmp_path):
    data = VQADataModule(str(write_vqa(tmp_path / "vqa")), tokenizer_cache=str(tmp_path / "bpe"))
    data.setup()
    assert not data.canonical and "offline BPE ids (not bert-base-uncased's)" in data.split_note
    ids = data.dataset("train", "subclips")[0]["text"]  # <s> question </s></s> answer </s> <pad> ...
    ends = torch.nonzero(ids == 2)[:, 0].tolist()
    assert ids.shape == (32,) and ids[0] == 0 and len(ends) == 3 and ends[1] == ends[0] + 1
    assert (
        ids[ends[2] + 1 :].eq(1).all() and data.input_specs[1].vocab_size == data.tokenizer.get_vocab_size()
    )
