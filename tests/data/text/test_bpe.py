"""Tests for the byte-level BPE (ssl_lightning/data/text/bpe.py): RoBERTa's special ids, the vocabulary
size, round trips, merges checked against a naive GPT-2 BPE written here, tokenizer folders and the cache."""

from __future__ import annotations

import json
import re

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from ssl_lightning.data.text.bpe import cached_bpe, load_tokenizer_dir, train_bpe
from ssl_lightning.data.text.pydoc_corpus import pydoc_documents

SENTENCE = "The quick brown fox's 2 dogs don't jump over 13 lazy statements!"


@pytest.fixture(scope="module")
def pydoc_bpe() -> Tokenizer:
    return train_bpe(pydoc_documents("train"), vocab_size=600)


def test_special_tokens_come_first_in_roberta_order(pydoc_bpe):
    # Data2VecTextConfig: bos_token_id 0, pad_token_id 1, eos_token_id 2; RoBERTa: <unk> 3; then <mask>
    assert [pydoc_bpe.id_to_token(i) for i in range(5)] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]


def test_vocab_size_is_reached_on_a_large_enough_corpus(pydoc_bpe):
    assert pydoc_bpe.get_vocab_size() == 600
    # the 256 byte symbols follow the 5 special tokens, every merge after them
    assert pydoc_bpe.token_to_id("Ġ") is not None and pydoc_bpe.token_to_id("!") == 5


def test_a_small_corpus_stops_short_of_vocab_size():
    tokenizer = train_bpe(["ab ab ab"], vocab_size=1000)
    # words ab, Ġab, Ġab: a+b (3 times), then Ġ+ab (2 times); no pair is left twice
    assert tokenizer.get_vocab_size() == 5 + 256 + 2
    assert tokenizer.token_to_id("ab") == 261 and tokenizer.token_to_id("Ġab") == 262


def test_round_trip_and_roberta_wrapping(pydoc_bpe):
    text = SENTENCE + " naïve café — 3½ ünïcödé"
    encoding = pydoc_bpe.encode(text)
    assert encoding.ids[0] == 0 and encoding.ids[-1] == 2  # <s> ... </s>
    assert 3 not in encoding.ids  # byte-level: never <unk>
    assert pydoc_bpe.decode(encoding.ids) == text
    assert pydoc_bpe.encode(text, add_special_tokens=False).ids == encoding.ids[1:-1]


def test_min_frequency_limits_merges():
    # "ab" occurs in two words of the corpus, "cd" in one: with min_frequency 2 only a+b is merged
    tokenizer = train_bpe(["ab xab", "cd"], vocab_size=300, min_frequency=2)
    assert tokenizer.token_to_id("ab") is not None and tokenizer.token_to_id("cd") is None
    assert train_bpe(["ab xab", "cd"], vocab_size=300, min_frequency=3).token_to_id("ab") is None


def _gpt2_byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> printable character table: printable latin-1 bytes map to themselves, the others
    to 256, 257, ... in byte order."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for byte in range(256):
        if byte in kept:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def naive_gpt2_bpe(text: str, vocab: dict[str, int], merges: list[tuple[str, str]]) -> list[int]:
    """GPT-2's encoder for ASCII text: pre-tokenize, map bytes, then repeatedly merge every occurrence of
    the lowest-ranked pair (left to right), as `encoder.py: Encoder.bpe` does."""
    pieces = re.findall(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+", text)
    table, ranks = _gpt2_byte_symbols(), {pair: rank for rank, pair in enumerate(merges)}
    ids = []
    for piece in pieces:
        symbols = [table[byte] for byte in piece.encode()]
        while len(symbols) > 1:
            pair = min(zip(symbols, symbols[1:], strict=False), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        ids += [vocab[symbol] for symbol in symbols]
    return ids


def test_vocab_and_merges_folder_encodes_as_naive_gpt2_bpe(pydoc_bpe, tmp_path):
    pydoc_bpe.model.save(str(tmp_path))  # RoBERTa's files: vocab.json + merges.txt
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    lines = (tmp_path / "merges.txt").read_text().splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    loaded = load_tokenizer_dir(tmp_path)
    expected = naive_gpt2_bpe(SENTENCE, vocab, merges)
    assert len(expected) < len(SENTENCE.encode())  # merges were applied
    assert loaded.encode(SENTENCE, add_special_tokens=False).ids == expected
    assert pydoc_bpe.encode(SENTENCE, add_special_tokens=False).ids == expected
    assert loaded.encode(SENTENCE).ids == [0, *expected, 2]
    assert loaded.token_to_id("<mask>") == 4 and loaded.decode(loaded.encode(SENTENCE).ids) == SENTENCE


def test_tokenizer_json_folder_round_trips(pydoc_bpe, tmp_path):
    pydoc_bpe.save(str(tmp_path / "tokenizer.json"))
    loaded = load_tokenizer_dir(tmp_path)
    assert loaded.encode(SENTENCE).ids == pydoc_bpe.encode(SENTENCE).ids
    assert loaded.get_vocab_size() == 600


def test_missing_tokenizer_folder_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tokenizer folder not found: .*nowhere"):
        load_tokenizer_dir(tmp_path / "nowhere")
    (tmp_path / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=rf"{re.escape(str(tmp_path))} holds no tokenizer.json"):
        load_tokenizer_dir(tmp_path)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="vocab_size must be an int above 261"):
        train_bpe(["text"], vocab_size=261)
    with pytest.raises(ValueError, match="min_frequency must be an int >= 1"):
        train_bpe(["text"], vocab_size=300, min_frequency=0)


def test_cache_reuses_its_tokenizer_and_refuses_another_corpus(tmp_path):
    folder = tmp_path / "bpe"
    corpus = ["alpha beta gamma", "beta gamma delta", "gamma delta alpha"]
    first = cached_bpe(corpus, 300, 2, folder)
    stamp = (folder / "tokenizer.json").stat().st_mtime_ns
    again = cached_bpe(corpus, 300, 2, folder)
    assert (folder / "tokenizer.json").stat().st_mtime_ns == stamp  # read back, not retrained
    assert again.to_str() == first.to_str()
    with pytest.raises(ValueError, match=r"tokenizer_cache .*bpe holds a tokenizer.json trained on another"):
        cached_bpe(corpus + ["epsilon"], 300, 2, folder)
    with pytest.raises(ValueError, match="trained on another corpus or with other settings"):
        cached_bpe(corpus, 301, 2, folder)


def test_cache_refuses_a_tokenizer_of_unknown_origin(tmp_path):
    tokenizer = Tokenizer(models.WordLevel({"a": 0}, unk_token="a"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="fingerprint None"):
        cached_bpe(["a b", "b a"], 300, 2, tmp_path)
