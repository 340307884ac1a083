"""DabsTextDataModule: documents as 128 token ids, from files with a BERT vocabulary folder, a `datasets`
folder, and the embedded pydoc corpus with the offline BPE."""

from pathlib import Path

import pytest
import torch

from ssl_lightning.data.dabs.text import DabsTextDataModule
from ssl_lightning.nn.input_specs import InputSpec

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "a"]


@pytest.fixture
def bert_dir(tmp_path) -> Path:
    """A bert-base-uncased style folder: vocab.txt only (one WordPiece token a line, id = line number)."""
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return folder


def test_files_with_a_bert_vocabulary(tmp_path, bert_dir):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("The cat sat on the mat\n\n   \nA cats dog " + "cat " * 200 + "\n")
    valid.write_text("the mats\n")
    data = DabsTextDataModule(files=[str(train)], valid_files=[str(valid)], tokenizer_dir=str(bert_dir))
    data.setup()
    assert data.input_specs == [InputSpec("input_ids", "tokens", 128, vocab_size=len(VOCAB))]
    assert len(data.dataset("train", "random_crop")) == 2  # blank lines dropped
    first = data.dataset("train", "subclips")[0]["input_ids"]
    assert first[:8].tolist() == [2, 5, 6, 7, 8, 5, 9, 3] and first[8:].eq(0).all()  # [CLS] ... [SEP] [PAD]
    long = data.dataset("train", "subclips")[1]["input_ids"]
    assert (
        long.shape == (128,) and long[:5].tolist() == [2, 11, 6, 10, 1] and long[-1] == 3
    )  # cut, [SEP] kept
    batch = next(iter(data.subclip_dataloader("valid")))
    assert batch["input_ids"][0, :5].tolist() == [2, 5, 9, 10, 3] and batch["clip_id"].tolist() == [0]
    assert set(batch) == {"input_ids", "clip_id"} and batch["input_ids"].dtype == torch.int64
    assert not data.canonical and "tokenizer_dir" in data.split_note
    with pytest.raises(ValueError, match="no 'test' split"):
        data.dataset("test", "subclips")


def test_datasets_folder_splits(tmp_path, bert_dir):
    import datasets

    tables = datasets.DatasetDict(
        {
            name: datasets.Dataset.from_dict({"text": texts})
            for name, texts in (("train", [" = the cat = \n", "", " the mat \n"]), ("validation", ["cat"]))
        }
        | {"test": datasets.Dataset.from_dict({"text": ["mat", "sat"]})}
    )
    tables.save_to_disk(str(tmp_path / "wiki"))
    data = DabsTextDataModule(hf_dataset=str(tmp_path / "wiki"), tokenizer_dir=str(bert_dir), batch_size=2)
    data.setup()
    assert [len(data.dataset(split, "subclips")) for split in ("train", "valid", "test")] == [2, 1, 2]
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape == (2, 128)
    assert DabsTextDataModule(hf_dataset="wikitext", hf_config="wikitext-103-v1", tokenizer_dir="x").canonical


def test_pydoc_corpus_with_the_offline_bpe(tmp_path):
    data = DabsTextDataModule(vocab_size=400, tokenizer_cache=str(tmp_path / "bpe"), batch_size=3)
    data.setup()
    spec = data.input_specs[0]
    assert spec.size == 128 and spec.vocab_size == data.tokenizer.get_vocab_size() <= 400
    batch = next(iter(data.val_dataloader()))
    ids = batch["input_ids"]
    assert ids.shape == (3, 128) and (ids[:, 0] == data.tokenizer.token_to_id("<s>")).all()
    assert "not bert-base-uncased" in data.split_note


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="files or hf_dataset"):
        DabsTextDataModule(files=["a"], hf_dataset="b")
    with pytest.raises(FileNotFoundError, match="vocab.txt"):
        DabsTextDataModule(tokenizer_dir=str(tmp_path)).setup()
    with pytest.raises(RuntimeError, match="setup"):
        _ = DabsTextDataModule().input_specs
