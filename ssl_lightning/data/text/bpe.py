"""Byte-level BPE tokenizers in RoBERTa's style (the data2vec text vocabulary): trained offline on a
corpus with Hugging Face `tokenizers`, or read from a tokenizer folder.

RoBERTa's (and data2vec text's) special tokens come first: `<s>` = 0 (bos), `<pad>` = 1, `</s>` = 2
(eos), `<unk>` = 3, then `<mask>` (4 in a trained vocabulary, 50264 in RoBERTa's), as in
`Data2VecTextConfig` (bos_token_id 0, pad_token_id 1, eos_token_id 2). Text is split into bytes mapped
to printable characters (GPT-2's byte-level alphabet, no prefix space), so every string encodes
without `<unk>`; `encode(text)` adds `<s> ... </s>` (RoBERTa's post-processor) unless
`add_special_tokens=False`. `cached_bpe` saves a trained BPE next to the fingerprint of its corpus and
settings and reads it back while they match, so that later and resumed runs keep the same ids.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
"""RoBERTa's special tokens, in the order a trained vocabulary numbers them (0..4)."""
BOS, PAD, EOS, UNK, MASK = SPECIAL_TOKENS
BYTE_ALPHABET = 256
"""Byte-level BPE starts from one symbol per byte."""
FINGERPRINT_FILE = "corpus_fingerprint.txt"
"""Written next to a cached tokenizer.json: the `corpus_fingerprint` it was trained on."""


def _byte_level(model: models.BPE) -> Tokenizer:
    """A tokenizer of `model` with RoBERTa's byte-level pre-tokenizer (no prefix space) and decoder."""
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _with_post_processor(tokenizer: Tokenizer, where: str) -> Tokenizer:
    """Add RoBERTa's `<s> ... </s>` post-processor; the special tokens must be in the vocabulary."""
    missing = [token for token in (BOS, EOS) if tokenizer.token_to_id(token) is None]
    if missing:
        raise ValueError(
            f"{where} has no {missing} token(s); a RoBERTa-style vocabulary needs {SPECIAL_TOKENS}"
        )
    tokenizer.post_processor = processors.RobertaProcessing(
        (EOS, tokenizer.token_to_id(EOS)), (BOS, tokenizer.token_to_id(BOS)), trim_offsets=True
    )
    return tokenizer


def train_bpe(texts: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> Tokenizer:
    """A byte-level BPE of at most `vocab_size` tokens trained on `texts` (special tokens 0..4, the 256
    byte symbols, then merges of pairs seen at least `min_frequency` times; a small corpus may stop
    short of `vocab_size`).

    Raises:
        ValueError: `vocab_size` leaves no room for merges, or `min_frequency` < 1.
    """
    floor = len(SPECIAL_TOKENS) + BYTE_ALPHABET
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size <= floor:
        raise ValueError(
            f"vocab_size must be an int above {floor} (the {len(SPECIAL_TOKENS)} special tokens and "
            f"{BYTE_ALPHABET} byte symbols), got {vocab_size!r}"
        )
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"min_frequency must be an int >= 1, got {min_frequency!r}")
    tokenizer = _byte_level(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _with_post_processor(tokenizer, "the trained vocabulary")


def load_tokenizer_dir(path: str | Path) -> Tokenizer:
    """The tokenizer of a Hugging Face tokenizer folder: its `tokenizer.json`, else a byte-level BPE
    from RoBERTa's / GPT-2's `vocab.json` + `merges.txt` (the special tokens of `SPECIAL_TOKENS` are
    added when missing, and mapped to their ids when the vocabulary has them).

    Raises:
        FileNotFoundError: the folder is missing or holds neither file set.
    """
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {folder}")
    if (folder / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    if vocab.is_file() and merges.is_file():
        tokenizer = _byte_level(models.BPE.from_file(str(vocab), str(merges)))
        tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
        return _with_post_processor(tokenizer, str(folder))
    raise FileNotFoundError(
        f"{folder} holds no tokenizer.json (nor vocab.json + merges.txt); save one there with "
        "`tokenizer.save(...)` / `AutoTokenizer.save_pretrained(...)`, or pass tokenizer=None to train a BPE"
    )


def corpus_fingerprint(texts: Iterable[str], vocab_size: int, min_frequency: int) -> str:
    """sha256 (hex) of the BPE settings and every text (a text's UTF-8 bytes, then a NUL)."""
    digest = hashlib.sha256(f"bpe vocab_size={vocab_size} min_frequency={min_frequency}\0".encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in its folder (readers never see a partial file,
    and concurrent writers of the same text are harmless)."""
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
    ) as tmp:
        tmp.write(text)
    os.replace(tmp.name, path)


def cached_bpe(texts: Sequence[str], vocab_size: int, min_frequency: int, folder: Path) -> Tokenizer:
    """`train_bpe(texts, ...)`, saved as `folder/tokenizer.json` with its corpus fingerprint in
    `folder/FINGERPRINT_FILE`, or read back from there when the fingerprint matches.

    Raises:
        ValueError: `folder` holds a tokenizer.json of another corpus or settings, or of unknown origin.
    """
    fingerprint = corpus_fingerprint(texts, vocab_size, min_frequency)
    tokenizer_file, fingerprint_file = folder / "tokenizer.json", folder / FINGERPRINT_FILE
    if tokenizer_file.is_file():
        found = fingerprint_file.read_text().strip() if fingerprint_file.is_file() else None
        if found == fingerprint:
            return Tokenizer.from_file(str(tokenizer_file))
        raise ValueError(
            f"tokenizer_cache {folder} holds a tokenizer.json trained on another corpus or with other "
            f"settings (fingerprint {found}, this corpus and vocab_size={vocab_size}, "
            f"min_frequency={min_frequency}: {fingerprint}); choose another tokenizer_cache, delete the "
            "folder, or pass it as tokenizer= to use that tokenizer"
        )
    tokenizer = train_bpe(texts, vocab_size, min_frequency)
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomically(fingerprint_file, fingerprint + "\n")
    _write_atomically(tokenizer_file, tokenizer.to_str())
    return tokenizer
