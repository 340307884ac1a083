"""`TextDataModule`: token blocks of a text corpus for masked-language-model pre-training (data2vec text).

Batches: `{"input_ids": int64 [B, L], "padding_mask": bool [B, L]}` (True = padding, `<pad>` there),
L <= `max_length`, each row `<s>` followed by a block of the corpus's token stream (`blocks.py`: fairseq's
`masked_lm` blocks; "none" break mode by default, data2vec 2.0's; data2vec 1.0 used "complete_doc").
Masking is the method's work, with the ids this datamodule exposes after `setup`: `vocab_size`,
`mask_token_id`, `pad_token_id`, `bos_token_id`, `eos_token_id` and `special_ids`.

Corpus (documents: non-empty stripped lines or rows), one of:
- `files`: plain-text files, one document a line (`valid_files`, or a seeded `valid_fraction` held out);
- `hf_dataset`: a `datasets` hub id, local data folder or `save_to_disk` folder, its `text_column` and
  `train_split` / `valid_split` (None: a seeded `valid_fraction` of train held out);
- neither: the embedded corpus, Python's help topics (`pydoc_corpus.py`).

Tokenizer: a tokenizer folder (`tokenizer`: tokenizer.json, or RoBERTa's vocab.json + merges.txt), or
a byte-level BPE of `vocab_size` trained on the train documents (`bpe.py`), saved in `tokenizer_cache`
(default `$SSL_LIGHTNING_DATA/tokenizers/bpe<vocab_size>-<fingerprint>`) and reused while the corpus
and settings are unchanged, so that a resumed or later run gets the same ids. `prepare_data` trains it
once (rank 0), `setup` reads it back.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader

from ssl_lightning.data.embedded.hares_mini.build import default_root
from ssl_lightning.data.resumable import ResumableDataLoader, TrainLoaderState
from ssl_lightning.data.text.blocks import (
    BREAK_MODES,
    BreakMode,
    PadTokens,
    TokenBlocks,
    block_bounds,
    token_stream,
)
from ssl_lightning.data.text.bpe import (
    BOS,
    EOS,
    MASK,
    PAD,
    SPECIAL_TOKENS,
    cached_bpe,
    corpus_fingerprint,
    load_tokenizer_dir,
)
from ssl_lightning.data.text.pydoc_corpus import pydoc_documents
from ssl_lightning.data.text.sources import hold_out, load_hf_splits, read_text_files

MIN_LENGTH = 2
"""The shortest block: `<s>` and one token."""


class TextDataModule(TrainLoaderState, L.LightningDataModule):
    """Token blocks of a text corpus; see the module docstring.

    Args:
        files: plain-text file(s) of the train documents, one a line.
        valid_files: plain-text file(s) of the valid documents (None: hold out `valid_fraction` of `files`).
        hf_dataset: a `datasets` hub id, local data folder or `save_to_disk` folder (instead of `files`).
        hf_config: the `datasets` configuration name (e.g. "wikitext-103-raw-v1").
        text_column: the column of `hf_dataset` holding the documents.
        train_split: split of `hf_dataset` trained on.
        valid_split: split of `hf_dataset` validated on (None: hold out `valid_fraction` of train).
        valid_fraction: share of the train documents held out (seeded by `seed`) when no valid
            documents are given; at least one document.
        tokenizer: a tokenizer folder; None trains a byte-level BPE on the train documents.
        vocab_size: vocabulary size of the trained BPE (a small corpus may give fewer).
        min_frequency: a pair is merged only when seen this often in the corpus.
        tokenizer_cache: folder of the trained BPE (default under `$SSL_LIGHTNING_DATA/tokenizers/`).
        max_length: tokens per block, `<s>` included (fairseq's tokens_per_sample; data2vec: 512).
        sample_break_mode: "none" (blocks cross document boundaries) or "complete_doc".
        batch_size: blocks per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle and of the valid hold-out.
    """

    def __init__(
        self,
        files: list[str] | str | None = None,
        valid_files: list[str] | str | None = None,
        hf_dataset: str | None = None,
        hf_config: str | None = None,
        text_column: str = "text",
        train_split: str = "train",
        valid_split: str | None = "validation",
        valid_fraction: float = 0.01,
        tokenizer: str | None = None,
        vocab_size: int = 8000,
        min_frequency: int = 2,
        tokenizer_cache: str | None = None,
        max_length: int = 512,
        sample_break_mode: BreakMode = "none",
        batch_size: int = 16,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if files is not None and hf_dataset is not None:
            raise ValueError("TextDataModule: give files or hf_dataset, not both")
        if valid_files is not None and files is None:
            raise ValueError("TextDataModule: valid_files needs files (the train documents)")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < MIN_LENGTH:
            raise ValueError(
                f"TextDataModule: max_length must be an int >= {MIN_LENGTH} (<s> and at least one token), "
                f"got {max_length!r}"
            )
        if sample_break_mode not in BREAK_MODES:
            raise ValueError(
                f"TextDataModule: sample_break_mode must be one of {BREAK_MODES}, got {sample_break_mode!r}"
            )
        if not 0 < valid_fraction < 1:
            raise ValueError(f"TextDataModule: valid_fraction must lie in (0, 1), got {valid_fraction!r}")
        for name, value, low in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"TextDataModule: {name} must be an int >= {low}, got {value!r}")
        self.save_hyperparameters()
        self.files = [files] if isinstance(files, str) else files
        self.valid_files = [valid_files] if isinstance(valid_files, str) else valid_files
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.tokenizer: Tokenizer | None = None
        self._documents: dict[str, list[str]] | None = None
        self._datasets: dict[str, TokenBlocks] = {}

    def documents(self) -> dict[str, list[str]]:
        """The "train" and "valid" documents of the corpus (read once).

        Raises:
            FileNotFoundError: naming the missing text files.
            ValueError: a split has no document (the message names where they were read from).
        """
        if self._documents is None:
            self._documents, source = self._read_documents()
            empty = [split for split, documents in self._documents.items() if not documents]
            if empty:
                raise ValueError(
                    f"TextDataModule: the {empty} split(s) of {source} hold no document (no non-empty line "
                    "or row); check the corpus"
                )
        return self._documents

    def _read_documents(self) -> tuple[dict[str, list[str]], str]:
        """The documents of both splits and a description of where they came from."""
        hp = self.hparams
        if self.files is not None:
            train = read_text_files(self.files, "files")
            if self.valid_files is not None:
                return {"train": train, "valid": read_text_files(self.valid_files, "valid_files")}, (
                    f"files={self.files}, valid_files={self.valid_files}"
                )
            train, valid = hold_out(train, self.hparams.valid_fraction, self.seed, f"files={self.files}")
            return {"train": train, "valid": valid}, f"files={self.files}"
        if hp.hf_dataset is not None:
            source = f"hf_dataset={hp.hf_dataset}"
            splits = [hp.train_split] + ([] if hp.valid_split is None else [hp.valid_split])
            loaded = load_hf_splits(hp.hf_dataset, hp.hf_config, splits, hp.text_column)
            if hp.valid_split is not None:
                return {"train": loaded[hp.train_split], "valid": loaded[hp.valid_split]}, source
            train, valid = hold_out(loaded[hp.train_split], hp.valid_fraction, self.seed, source)
            return {"train": train, "valid": valid}, source
        return {split: pydoc_documents(split) for split in ("train", "valid")}, "the pydoc help topics"

    @property
    def tokenizer_cache(self) -> Path:
        """Folder of the trained BPE: `tokenizer_cache`, else one per corpus fingerprint and settings."""
        if self.hparams.tokenizer_cache is not None:
            return Path(self.hparams.tokenizer_cache).expanduser()
        hp = self.hparams
        fingerprint = corpus_fingerprint(self.documents()["train"], hp.vocab_size, hp.min_frequency)
        return default_root() / "tokenizers" / f"bpe{hp.vocab_size}-{fingerprint[:16]}"

    def _load_tokenizer(self) -> Tokenizer:
        """The `tokenizer` folder's tokenizer (checked for RoBERTa's special tokens), or the cached BPE."""
        hp = self.hparams
        if hp.tokenizer is None:
            return cached_bpe(
                self.documents()["train"], hp.vocab_size, hp.min_frequency, self.tokenizer_cache
            )
        tokenizer = load_tokenizer_dir(hp.tokenizer)
        missing = [token for token in (BOS, PAD, EOS, MASK) if tokenizer.token_to_id(token) is None]
        if missing:
            raise ValueError(
                f"the tokenizer in {hp.tokenizer} lacks the special token(s) {missing}; TextDataModule needs "
                f"RoBERTa's {SPECIAL_TOKENS} (bos, pad, eos, unk, mask)"
            )
        return tokenizer

    def prepare_data(self) -> None:
        """Read the corpus (downloads a hub data set) and train and save the BPE when there is none."""
        self._load_tokenizer()

    def setup(self, stage: str | None = None) -> None:
        """Load the tokenizer and cut both splits into blocks (once)."""
        if self.tokenizer is not None:
            return
        self.tokenizer = self._load_tokenizer()
        for split, documents in self.documents().items():
            stream, lengths = token_stream(documents, self.tokenizer, self.eos_token_id)
            starts, ends = block_bounds(lengths, self.hparams.max_length - 1, self.hparams.sample_break_mode)
            self._datasets[split] = TokenBlocks(stream, starts, ends, self.bos_token_id)

    def _setup_tokenizer(self, asked: str) -> Tokenizer:
        if self.tokenizer is None:
            raise RuntimeError(f"TextDataModule.setup() must run before asking for {asked}")
        return self.tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of token ids of the tokenizer (after `setup`), special tokens included."""
        return self._setup_tokenizer("vocab_size").get_vocab_size(with_added_tokens=True)

    @property
    def bos_token_id(self) -> int:
        """Id of `<s>`, the first token of every block."""
        return self._setup_tokenizer("bos_token_id").token_to_id(BOS)

    @property
    def pad_token_id(self) -> int:
        """Id of `<pad>`, at the padded positions."""
        return self._setup_tokenizer("pad_token_id").token_to_id(PAD)

    @property
    def eos_token_id(self) -> int:
        """Id of `</s>`, after every document."""
        return self._setup_tokenizer("eos_token_id").token_to_id(EOS)

    @property
    def mask_token_id(self) -> int:
        """Id of `<mask>`, for the method's masking."""
        return self._setup_tokenizer("mask_token_id").token_to_id(MASK)

    @property
    def special_ids(self) -> tuple[int, ...]:
        """Sorted ids of RoBERTa's special tokens in the vocabulary (not content: never masked)."""
        tokenizer = self._setup_tokenizer("special_ids")
        ids = (tokenizer.token_to_id(token) for token in SPECIAL_TOKENS)
        return tuple(sorted(i for i in ids if i is not None))

    def dataset(self, split: str) -> TokenBlocks:
        """The blocks of `split` ("train" or "valid")."""
        if not self._datasets:
            raise RuntimeError("TextDataModule.setup() must run before asking for a dataset or loader")
        if split not in self._datasets:
            raise ValueError(f"TextDataModule has no split {split!r}; its splits: {list(self._datasets)}")
        return self._datasets[split]

    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled train blocks (order a function of `(seed, epoch)`); a resumed fit continues exactly."""
        return self.resumable_train_loader(self.dataset("train"), PadTokens(self.pad_token_id))

    def val_dataloader(self) -> DataLoader:
        """Valid blocks in corpus order."""
        return DataLoader(
            self.dataset("valid"),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=PadTokens(self.pad_token_id),
            generator=torch.Generator().manual_seed(self.seed),
            persistent_workers=self.num_workers > 0,
        )
