"""GlueDataModule: DABS's GLUE tasks from in-memory `datasets` tables (no download), with a BERT vocabulary
folder or the offline BPE."""

from pathlib import Path

import datasets
import pytest
import torch
from tokenizers import Tokenizer

from ssl_lightning.data.dabs.glue import GlueDataModule
from ssl_lightning.nn.input_specs import InputSpec

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog"]
PAD, UNK, CLS, SEP, THE, CAT, SAT, ON, MAT, A, DOG = 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    """A bert-base-uncased style folder: vocab.txt only (id = line number)."""
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return folder


def table(columns: dict[str, list], label_names: list[str] | None = None) -> datasets.Dataset:
    """A GLUE-shaped table: string columns, `label` a ClassLabel (float for STS-B), `idx`."""
    features = {name: datasets.Value("string") for name in columns if name != "label"}
    features["label"] = datasets.ClassLabel(names=label_names) if label_names else datasets.Value("float32")
    features["idx"] = datasets.Value("int32")
    rows = len(columns["label"])
    return datasets.Dataset.from_dict(
        {**columns, "idx": list(range(rows))}, features=datasets.Features(features)
    )


MRPC_NAMES = ["not_equivalent", "equivalent"]


def mrpc_tables() -> dict[str, datasets.Dataset]:
    train = {
        "sentence1": ["The cat sat", "a dog", "", "the mat"],
        "sentence2": ["on the mat", "the dog sat", "a cat", "a mat"],
        "label": [1, 0, 1, 0],
    }
    validation = {"sentence1": ["A cat"], "sentence2": ["The Dog " * 100], "label": [1]}
    return {"train": table(train, MRPC_NAMES), "validation": table(validation, MRPC_NAMES)}


def test_mrpc_pairs_joined_by_bert_as_one_bce_output(bert_dir):
    data = GlueDataModule("mrpc", hub=mrpc_tables(), tokenizer_dir=str(bert_dir), batch_size=2)
    data.setup()
    assert data.input_specs == [InputSpec("input_ids", "tokens", 128, vocab_size=len(VOCAB))]
    assert data.label_type == "multi" and data.classes == ("equivalent",) and data.num_classes == 1
    assert data.metric == "accuracy" and data.canonical and "mrpc[validation] (test" in data.split_note
    sizes = {split: len(data.dataset(split, "subclips")) for split in ("train", "valid", "test")}
    assert sizes == {"train": 3, "valid": 1, "test": 1}  # the row with an empty sentence1 dropped
    first = data.dataset("train", "subclips")[0]
    expected = [CLS, THE, CAT, SAT, SEP, ON, THE, MAT, SEP]
    assert first["input_ids"][:9].tolist() == expected and first["input_ids"][9:].eq(PAD).all()
    assert first["label"].dtype == torch.float32 and first["label"].tolist() == [1.0]
    assert data.dataset("train", "subclips")[2]["input_ids"][:6].tolist() == [CLS, THE, MAT, SEP, A, MAT]
    long = data.dataset("test", "subclips")[0]["input_ids"]
    assert long.shape == (128,) and long[:5].tolist() == [CLS, A, CAT, SEP, THE]  # longest first cut
    assert long[4:-1].tolist() == [THE, DOG] * 61 + [THE] and long[-1] == SEP  # 128 - 5: 123 of b
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"input_ids", "label", "clip_id"}
    assert batch["input_ids"].shape == (2, 128) and batch["label"].shape == (2, 1)


def test_mnli_is_three_classes_from_mnli_train_and_matched_validation(bert_dir):
    names = ["entailment", "neutral", "contradiction"]
    train = table(
        {"premise": ["the cat", "a dog"], "hypothesis": ["a cat", "the dog"], "label": [2, 0]}, names
    )
    test = table({"premise": ["the mat"], "hypothesis": ["a mat"], "label": [1]}, names)
    data = GlueDataModule(
        "mnli_mismatched", hub={"train": train, "validation": test}, tokenizer_dir=str(bert_dir)
    )
    data.setup()
    assert data.label_type == "single" and data.classes == tuple(names) and data.num_classes == 3
    assert "mnli[train] (train), mnli_mismatched[validation]" in data.split_note
    labels = [data.dataset("train", "random_crop")[i]["label"] for i in range(2)]
    assert [label.item() for label in labels] == [2, 0] and labels[0].dtype == torch.int64
    assert data.dataset("test", "subclips")[0]["label"].item() == 1


def test_stsb_is_regression_and_cola_a_correlated_single_sentence(bert_dir):
    stsb = {
        "sentence1": ["the cat", "a dog", "a mat"],
        "sentence2": ["a cat", "the dog", "the cat"],
        "label": [4.5, 3.25, 0.0],
    }
    tables = {"train": table(stsb), "validation": table(stsb)}
    data = GlueDataModule("stsb", hub=tables, tokenizer_dir=str(bert_dir))
    data.setup()
    assert data.label_type == "regression" and data.classes == () and data.num_classes == 1
    assert data.metric == "spearman"
    item = data.dataset("train", "subclips")[1]
    assert item["label"].shape == () and item["label"].item() == 3.25 and item["label"].dtype == torch.float32
    cola_names = ["unacceptable", "acceptable"]
    cola = table({"sentence": ["the cat sat", "cat the"], "label": [1, 0]}, cola_names)
    data = GlueDataModule("cola", hub={"train": cola, "validation": cola}, tokenizer_dir=str(bert_dir))
    data.setup()
    assert data.metric == "pearson" and data.label_type == "multi" and data.classes == ("acceptable",)
    item = data.dataset("test", "subclips")[1]
    assert item["input_ids"][:4].tolist() == [CLS, CAT, THE, SEP] and item["label"].tolist() == [0.0]


def test_offline_bpe_joins_pairs_roberta_style_and_caches(tmp_path):
    cache = tmp_path / "bpe"
    data = GlueDataModule("mrpc", hub=mrpc_tables(), vocab_size=300, tokenizer_cache=str(cache))
    data.setup()
    assert not data.canonical and "offline BPE" in data.split_note and (cache / "tokenizer.json").is_file()
    vocab = data.input_specs[0].vocab_size
    assert vocab == data.tokenizer.get_vocab_size() and vocab <= 300
    ids = data.dataset("train", "subclips")[1]["input_ids"].tolist()  # "a dog" / "the dog sat"
    bos, pad, eos = 0, 1, 2
    trained = Tokenizer.from_file(str(cache / "tokenizer.json"))  # as cached, without the fixed length
    first = trained.encode("a dog", add_special_tokens=False).ids
    second = trained.encode("the dog sat", add_special_tokens=False).ids
    joined = [bos, *first, eos, eos, *second, eos]
    assert ids[: len(joined)] == joined and set(ids[len(joined) :]) == {pad} and len(ids) == 128


def test_save_to_disk_folders_per_config(tmp_path, bert_dir):
    datasets.DatasetDict(mrpc_tables()).save_to_disk(str(tmp_path / "glue" / "mrpc"))
    data = GlueDataModule("mrpc", hub=str(tmp_path / "glue"), tokenizer_dir=str(bert_dir))
    data.setup()
    assert len(data.dataset("train", "subclips")) == 3 and len(data.dataset("test", "subclips")) == 1


def test_errors_name_the_task_split_column_or_labels(bert_dir):
    with pytest.raises(ValueError, match="unknown GLUE task 'mnli'.*mnli_matched"):
        GlueDataModule("mnli")
    tables = mrpc_tables()
    with pytest.raises(ValueError, match="lack the 'validation' split"):
        GlueDataModule("mrpc", hub={"train": tables["train"]}, tokenizer_dir=str(bert_dir)).setup()
    with pytest.raises(ValueError, match=r"mrpc\[train\] has no column\(s\) \['sentence2'\]"):
        broken = {**tables, "train": tables["train"].remove_columns("sentence2")}
        GlueDataModule("mrpc", hub=broken, tokenizer_dir=str(bert_dir)).setup()
    with pytest.raises(ValueError, match="labels are .*expected GLUE's"):
        GlueDataModule("rte", hub=tables, tokenizer_dir=str(bert_dir)).setup()
    hidden = table({"sentence1": ["a"], "sentence2": ["b"], "label": [-1]}, MRPC_NAMES)
    with pytest.raises(ValueError, match=r"labels \[-1\] outside \[0, 2\)"):
        GlueDataModule("mrpc", hub={**tables, "validation": hidden}, tokenizer_dir=str(bert_dir)).setup()
    with pytest.raises(RuntimeError, match="setup"):
        _ = GlueDataModule("mrpc", hub=tables).input_specs
