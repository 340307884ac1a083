"""Tests for TextDataModule on the plain-text layout (tests/layouts/TextDataModule.py), a saved
`datasets` DatasetDict and the embedded pydoc corpus: batches, blocks, splits, tokenizer, resume, errors."""

from __future__ import annotations

import runpy
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset, DatasetDict
from tokenizers import Tokenizer, models, pre_tokenizers

from ssl_lightning.data import TextDataModule
from ssl_lightning.data.text.pydoc_corpus import pydoc_documents

layout = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "TextDataModule.py")))
DOCUMENTS = 40
"""Lines of the layout's corpus."""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    """The layout's overrides (`files`, `tokenizer_cache`), written once."""
    return layout.make(tmp_path_factory.mktemp("text"))


def ready(**kwargs) -> TextDataModule:
    datamodule = TextDataModule(**kwargs)
    datamodule.setup("fit")
    return datamodule


def split_documents(datamodule: TextDataModule, split: str) -> list[str]:
    """The documents of a split recovered from its blocks in order: bos dropped, decoded, cut at </s>."""
    dataset = datamodule.dataset(split)
    ids = [token for k in range(len(dataset)) for token in dataset[k][1:].tolist()]
    text = datamodule.tokenizer.decode(ids, skip_special_tokens=False)
    assert text.endswith("</s>")
    return text[: -len("</s>")].split("</s>")


def test_batches_follow_the_contract(corpus):
    datamodule = ready(**corpus, vocab_size=300, max_length=16, batch_size=4)
    batches = list(datamodule.train_dataloader())
    for batch in batches:
        ids, mask = batch["input_ids"], batch["padding_mask"]
        assert set(batch) == {"input_ids", "padding_mask"}
        assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == mask.shape
        assert ids.shape[1] <= 16 and (ids[:, 0] == datamodule.bos_token_id).all()
        assert (ids[mask] == datamodule.pad_token_id).all() and not (
            ids[~mask] == datamodule.pad_token_id
        ).any()
    # "none" mode: every block but the stream's last one is full, so one batch has padding at most
    assert sum(bool(batch["padding_mask"].any()) for batch in batches) <= 1
    assert sum(batch["input_ids"].shape[0] for batch in batches) == len(datamodule.dataset("train"))


def test_ids_are_roberta_s_after_setup(corpus):
    datamodule = TextDataModule(**corpus, vocab_size=300)
    with pytest.raises(RuntimeError, match=r"setup\(\) must run before asking for mask_token_id"):
        _ = datamodule.mask_token_id
    datamodule.setup("fit")
    assert (datamodule.bos_token_id, datamodule.pad_token_id, datamodule.eos_token_id) == (0, 1, 2)
    assert datamodule.mask_token_id == 4 and datamodule.special_ids == (0, 1, 2, 3, 4)
    assert datamodule.vocab_size == 300


def test_blocks_hold_the_documents_in_order(corpus):
    datamodule = ready(**corpus, vocab_size=300, max_length=16)
    lines = layout.corpus_lines()
    train, valid = split_documents(datamodule, "train"), split_documents(datamodule, "valid")
    # 1% of 40 rounds to 0, and at least one document is held out
    assert len(valid) == 1 and len(train) == DOCUMENTS - 1
    assert sorted(train + valid) == sorted(lines)
    assert train == [line for line in lines if line not in valid]  # file order kept


def test_none_mode_blocks_are_full_and_cross_documents(corpus):
    datamodule = ready(**corpus, vocab_size=300, max_length=16)
    dataset = datamodule.dataset("train")
    lengths = [dataset[k].numel() for k in range(len(dataset))]
    assert lengths[:-1] == [16] * (len(dataset) - 1) and 2 <= lengths[-1] <= 16
    eos_inside = [k for k in range(len(dataset)) if (dataset[k][1:-1] == 2).any()]
    assert eos_inside  # a document ends mid-block and the next one follows


def test_complete_doc_blocks_end_at_document_ends(corpus):
    datamodule = ready(**corpus, vocab_size=300, max_length=16, sample_break_mode="complete_doc")
    dataset = datamodule.dataset("train")
    for k in range(len(dataset)):
        block = dataset[k].tolist()
        assert len(block) <= 16 and 2 not in block[1:-1]  # </s> only as a block's last token
    assert sum(dataset[k][-1].item() == 2 for k in range(len(dataset))) == DOCUMENTS - 1
    valid = split_documents(datamodule, "valid")
    assert split_documents(datamodule, "train") == [
        line for line in layout.corpus_lines() if line not in valid
    ]


def test_valid_files_and_valid_loader(corpus, tmp_path):
    valid = tmp_path / "valid.txt"
    valid.write_text("First held-out document.\n\nSecond held-out document.\n")
    kwargs = {**corpus, "tokenizer_cache": str(tmp_path / "bpe")}  # another train set, another BPE
    datamodule = ready(**kwargs, valid_files=str(valid), vocab_size=300, max_length=8, batch_size=2)
    assert split_documents(datamodule, "valid") == ["First held-out document.", "Second held-out document."]
    assert len(split_documents(datamodule, "train")) == DOCUMENTS
    batches = list(datamodule.val_dataloader())
    again = list(datamodule.val_dataloader())
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(batches, again, strict=True))
    first = datamodule.dataset("valid")[0]
    assert torch.equal(batches[0]["input_ids"][0, : first.numel()], first)  # corpus order, not shuffled


def test_hold_out_is_seeded(corpus, tmp_path):
    held = [
        split_documents(
            ready(files=corpus["files"], tokenizer_cache=str(tmp_path / str(s)), valid_fraction=0.2, seed=s),
            "valid",
        )
        for s in (0, 0, 1)
    ]
    assert len(held[0]) == 8 and held[0] == held[1] and held[0] != held[2]


def test_shuffle_is_seeded_and_resumes_exactly(corpus, tmp_path):
    def first_batches(count: int) -> list[torch.Tensor]:
        loader = ready(**corpus, vocab_size=300, max_length=8, batch_size=3).train_dataloader()
        return [batch["input_ids"] for batch in islice(loader, count)]

    reference = first_batches(5)
    assert all(torch.equal(a, b) for a, b in zip(reference, first_batches(5), strict=True))
    other_seed = ready(
        files=corpus["files"], tokenizer_cache=str(tmp_path), max_length=8, batch_size=3, seed=1
    )
    assert not torch.equal(reference[0], next(iter(other_seed.train_dataloader()))["input_ids"])

    interrupted = ready(**corpus, vocab_size=300, max_length=8, batch_size=3)
    loader = interrupted.train_dataloader()
    consumed = [batch["input_ids"] for batch in islice(loader, 2)]
    state = interrupted.state_dict()
    assert state == {"train_loader": {"epoch": 0, "consumed": 2}}
    resumed = ready(**corpus, vocab_size=300, max_length=8, batch_size=3)
    resumed.load_state_dict(state)
    rest = [batch["input_ids"] for batch in islice(resumed.train_dataloader(), 3)]
    assert all(torch.equal(a, b) for a, b in zip(consumed + rest, reference, strict=True))


def test_trained_tokenizer_is_saved_and_reused(corpus):
    first = ready(**corpus, vocab_size=300)
    saved = Path(corpus["tokenizer_cache"]) / "tokenizer.json"
    assert saved.is_file() and Tokenizer.from_file(str(saved)).to_str() == first.tokenizer.to_str()
    stamp = saved.stat().st_mtime_ns
    ready(**corpus, vocab_size=300)
    assert saved.stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="trained on another corpus or with other settings"):
        ready(**corpus, vocab_size=280)


def test_default_cache_is_one_folder_per_corpus(corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SSL_LIGHTNING_DATA", str(tmp_path))
    datamodule = TextDataModule(files=corpus["files"], vocab_size=300)
    datamodule.prepare_data()
    folders = list((tmp_path / "tokenizers").iterdir())
    assert (
        len(folders) == 1
        and folders[0].name.startswith("bpe300-")
        and (folders[0] / "tokenizer.json").is_file()
    )
    assert datamodule.tokenizer_cache == folders[0]
    other = TextDataModule(files=corpus["files"], vocab_size=300, valid_fraction=0.5)
    assert other.tokenizer_cache != folders[0]  # other train documents, other fingerprint


def test_a_tokenizer_folder_is_used_as_is(corpus, tmp_path):
    trained = ready(**corpus, vocab_size=300)
    trained.tokenizer.save(str(tmp_path / "tokenizer.json"))
    datamodule = ready(files=corpus["files"], tokenizer=str(tmp_path), vocab_size=500, max_length=16)
    assert datamodule.vocab_size == 300
    assert torch.equal(
        datamodule.dataset("train")[0], ready(**corpus, vocab_size=300, max_length=16).dataset("train")[0]
    )


def test_a_tokenizer_without_roberta_tokens_is_refused(corpus, tmp_path):
    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0, "[MASK]": 1}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(
        ValueError, match=r"lacks the special token\(s\) \['<s>', '<pad>', '</s>', '<mask>'\]"
    ):
        ready(files=corpus["files"], tokenizer=str(tmp_path))


def test_hf_dataset_splits_and_columns(tmp_path):
    lines = layout.corpus_lines()
    DatasetDict(
        train=Dataset.from_dict({"content": lines[:30] + ["", "   "]}),
        validation=Dataset.from_dict({"content": lines[30:]}),
    ).save_to_disk(str(tmp_path / "saved"))
    kwargs = {
        "hf_dataset": str(tmp_path / "saved"),
        "tokenizer_cache": str(tmp_path / "bpe"),
        "vocab_size": 300,
    }
    datamodule = ready(**kwargs, text_column="content")
    assert split_documents(datamodule, "train") == lines[:30]  # empty rows dropped
    assert split_documents(datamodule, "valid") == lines[30:]
    with pytest.raises(ValueError, match=r"has no column 'text'; its columns: \['content'\]"):
        ready(**kwargs)
    with pytest.raises(ValueError, match=r"has no split 'dev'; its splits: \['train', 'validation'\]"):
        ready(**kwargs, text_column="content", valid_split="dev")


def test_a_single_saved_dataset_holds_out_valid(tmp_path):
    Dataset.from_dict({"text": layout.corpus_lines()}).save_to_disk(str(tmp_path / "one"))
    kwargs = {
        "hf_dataset": str(tmp_path / "one"),
        "tokenizer_cache": str(tmp_path / "bpe"),
        "vocab_size": 300,
    }
    with pytest.raises(ValueError, match="single saved Dataset.*pass valid_split=None"):
        ready(**kwargs)
    datamodule = ready(**kwargs, valid_split=None, valid_fraction=0.1)
    assert len(split_documents(datamodule, "valid")) == 4 and len(split_documents(datamodule, "train")) == 36


def test_embedded_pydoc_corpus_is_the_default(tmp_path):
    datamodule = ready(tokenizer_cache=str(tmp_path), vocab_size=400, max_length=64)
    assert split_documents(datamodule, "valid") == pydoc_documents("valid")
    assert split_documents(datamodule, "train") == pydoc_documents("train")
    assert not set(pydoc_documents("valid")) & set(pydoc_documents("train"))


def test_errors_name_the_problem(corpus, tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"files: text file\(s\) not found: \['.*missing_a.txt', '.*b.txt'\]"
    ):
        ready(files=[str(tmp_path / "missing_a.txt"), corpus["files"][0], str(tmp_path / "b.txt")])
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    with pytest.raises(ValueError, match=r"files=\[.*blank.txt'\] holds 0 document"):
        ready(files=str(blank))
    with pytest.raises(ValueError, match=r"\['valid'\] split\(s\) of files=.* hold no document"):
        ready(files=corpus["files"], valid_files=str(blank))
    with pytest.raises(
        ValueError, match=r"max_length must be an int >= 2 \(<s> and at least one token\), got 1"
    ):
        TextDataModule(max_length=1)
    with pytest.raises(ValueError, match="give files or hf_dataset, not both"):
        TextDataModule(files="a.txt", hf_dataset="wikitext")
    with pytest.raises(ValueError, match="sample_break_mode must be one of"):
        TextDataModule(sample_break_mode="eos")
