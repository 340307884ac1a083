"""DABS English text (Tamkin et al. 2021, `src/datasets/text/{utils,wikitext}.py`): token ids of length 128.

DABS pre-trains on WikiText-103 (`datasets` `wikitext` / `wikitext-103-v1`, splits train and validation):
every non-empty line is one item, `bert-base-uncased`'s tokenizer turns it into exactly 128 ids
(`max_length=128, padding="max_length", truncation=True`: [CLS] ... [SEP], then [PAD]), and the label is
a dummy 0. Here an item is `{"input_ids": int64 [128]}` (no label: nothing to probe during pre-training);
one input, `InputSpec("input_ids", "tokens", 128, vocab_size=V)`.

Tokenizer: `tokenizer_dir`, a Hugging Face tokenizer folder (`AutoTokenizer.save_pretrained`: its
tokenizer.json, or BERT's vocab.txt, lower-cased), gives DABS's ids with `bert-base-uncased`'s
(V = 30,522; DABS 1.0's spec says 35,022, a typo). Without one (bert's vocabulary cannot be downloaded
offline) a byte-level BPE of `vocab_size` is trained on the train documents (`ssl_lightning/data/text/
bpe.py`, cached): the ids then differ from DABS's, and a sequence is `<s> ... </s>` padded with `<pad>`.

Corpus (documents: stripped non-empty lines or rows, as `ssl_lightning/data/text/sources.py` reads them):
`files` (train) with `valid_files` / `test_files`; or `hf_dataset` (a hub id such as "wikitext" with
`hf_config` "wikitext-103-v1", a local or `save_to_disk` folder) and its splits; or neither: the
embedded pydoc help topics (train and valid only).
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer
from torch import Tensor
from torch.utils.data import Dataset

from ssl_lightning.data.dabs.base import DabsDataModule, Mode
from ssl_lightning.data.embedded.hares_mini.build import default_root
from ssl_lightning.data.text.bpe import PAD, cached_bpe, corpus_fingerprint
from ssl_lightning.data.text.pydoc_corpus import pydoc_documents
from ssl_lightning.data.text.sources import load_hf_splits, read_text_files
from ssl_lightning.nn.input_specs import InputSpec

DABS_SEQ_LEN = 128
BERT_PAD = "[PAD]"


def load_hf_tokenizer(folder: str | Path) -> Tokenizer:
    """The tokenizer of a Hugging Face tokenizer folder: tokenizer.json, else BERT's vocab.txt (lower-cased
    WordPiece with [CLS] / [SEP], as `bert-base-uncased`).

    Raises:
        FileNotFoundError: the folder holds neither file.
    """
    folder = Path(folder).expanduser()
    if (folder / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(folder / "tokenizer.json"))
    if (folder / "vocab.txt").is_file():
        return BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)._tokenizer
    raise FileNotFoundError(
        f"tokenizer_dir {folder} holds no tokenizer.json nor vocab.txt; save bert-base-uncased there with "
        "`AutoTokenizer.from_pretrained('bert-base-uncased').save_pretrained(<folder>)`"
    )


def fixed_length(tokenizer: Tokenizer, length: int) -> Tokenizer:
    """`tokenizer` truncating (longest first, for pairs) and padding every encoding to `length` ids.

    Raises:
        ValueError: the vocabulary has no pad token ([PAD] or <pad>).
    """
    pad = next((token for token in (BERT_PAD, PAD) if tokenizer.token_to_id(token) is not None), None)
    if pad is None:
        raise ValueError(f"the tokenizer has no pad token ({BERT_PAD} or {PAD}); DABS pads every sequence")
    tokenizer.enable_truncation(length, strategy="longest_first")
    tokenizer.enable_padding(length=length, pad_id=tokenizer.token_to_id(pad), pad_token=pad)
    return tokenizer


class TokenizedTexts(Dataset):
    """Texts as items `{"input_ids": int64 [length]}`, encoded when read."""

    def __init__(self, texts: list[str], tokenizer: Tokenizer) -> None:
        self.texts, self.tokenizer = texts, tokenizer

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return {"input_ids": torch.tensor(self.tokenizer.encode(self.texts[index]).ids, dtype=torch.int64)}


def offline_bpe(texts: list[str], vocab_size: int, cache: str | None) -> Tokenizer:
    """The offline BPE of `vocab_size` trained on `texts`, cached in `cache` (default
    under `$SSL_LIGHTNING_DATA/tokenizers/`, named by the corpus fingerprint)."""
    folder = cache or default_root() / "tokenizers" / (
        f"bpe{vocab_size}-{corpus_fingerprint(texts, vocab_size, 2)[:16]}"
    )
    return cached_bpe(texts, vocab_size, 2, Path(folder))


def dabs_tokenizer(
    tokenizer_dir: str | None, train_texts: list[str], vocab_size: int, cache: str | None, length: int
) -> Tokenizer:
    """A DABS tokenizer of `length` ids (`fixed_length`): the folder `tokenizer_dir` (bert-base-uncased's
    gives DABS's ids), else the offline BPE of `vocab_size` trained on `train_texts` (`offline_bpe`)."""
    if tokenizer_dir is not None:
        return fixed_length(load_hf_tokenizer(tokenizer_dir), length)
    return fixed_length(offline_bpe(train_texts, vocab_size, cache), length)


class DabsTextDataModule(DabsDataModule):
    """Text documents as DABS token ids (module docstring), for pre-training (no labels).

    Args:
        files, valid_files, test_files: plain-text files, one document a line.
        hf_dataset: a `datasets` hub id, local data folder or `save_to_disk` folder (instead of files);
            DABS: "wikitext".
        hf_config: its configuration (DABS: "wikitext-103-v1").
        text_column: the column holding the documents.
        splits: the `hf_dataset` split read for "train", "valid" and "test" (DABS evaluates on validation).
        tokenizer_dir: a Hugging Face tokenizer folder (bert-base-uncased for DABS's ids).
        vocab_size: size of the BPE trained when there is no `tokenizer_dir`.
        tokenizer_cache: folder of that BPE (default under `$SSL_LIGHTNING_DATA/tokenizers/`).
        batch_size: sequences per batch (DABS: 128).
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle.
    """

    label_type = "single"
    classes = ()

    def __init__(
        self,
        files: list[str] | None = None,
        valid_files: list[str] | None = None,
        test_files: list[str] | None = None,
        hf_dataset: str | None = None,
        hf_config: str | None = None,
        text_column: str = "text",
        splits: dict[str, str] | None = None,
        tokenizer_dir: str | None = None,
        vocab_size: int = 8000,
        tokenizer_cache: str | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.save_hyperparameters()
        if files is not None and hf_dataset is not None:
            raise ValueError("DabsTextDataModule: give files or hf_dataset, not both")
        if files is None and (valid_files is not None or test_files is not None):
            raise ValueError("DabsTextDataModule: valid_files / test_files need files (the train documents)")
        self.splits = {"train": "train", "valid": "validation", "test": "test"} | (splits or {})
        self.tokenizer: Tokenizer | None = None
        self._documents: dict[str, list[str]] = {}

    @property
    def source(self) -> str:
        """Where the documents come from, for messages and the split note."""
        hp = self.hparams
        if hp.files is not None:
            return f"files={hp.files}"
        return "the pydoc help topics" if hp.hf_dataset is None else f"hf_dataset={hp.hf_dataset}"

    @property
    def canonical(self) -> bool:
        """DABS's data: WikiText-103 train / validation with bert-base-uncased ids."""
        hp = self.hparams
        return (
            hp.hf_dataset == "wikitext"
            and hp.hf_config == "wikitext-103-v1"
            and hp.tokenizer_dir is not None
            and self.splits["valid"] == "validation"
        )

    @property
    def split_note(self) -> str:
        ids = (
            "tokenizer_dir ids" if self.hparams.tokenizer_dir else "offline BPE ids (not bert-base-uncased's)"
        )
        return f"{self.source}, splits {self.splits}; {ids}"

    @property
    def input_specs(self) -> list[InputSpec]:
        """`[InputSpec("input_ids", "tokens", 128, vocab_size=V)]` (V known after `setup`)."""
        if self.tokenizer is None:
            raise RuntimeError("DabsTextDataModule.setup() must run before asking for input_specs")
        return [InputSpec("input_ids", "tokens", DABS_SEQ_LEN, vocab_size=self.tokenizer.get_vocab_size())]

    def read_documents(self) -> dict[str, list[str]]:
        """The documents of the splits the source has."""
        hp = self.hparams
        if hp.files is not None:
            named = {"train": hp.files, "valid": hp.valid_files, "test": hp.test_files}
            return {
                split: read_text_files(paths, f"{split} files") for split, paths in named.items() if paths
            }
        if hp.hf_dataset is not None:
            loaded = load_hf_splits(hp.hf_dataset, hp.hf_config, list(self.splits.values()), hp.text_column)
            return {split: loaded[name] for split, name in self.splits.items()}
        return {split: pydoc_documents(split) for split in ("train", "valid")}

    def load(self) -> None:
        """Read the documents and the tokenizer."""
        self._documents = self.read_documents()
        hp = self.hparams
        self.tokenizer = dabs_tokenizer(
            hp.tokenizer_dir, self._documents["train"], hp.vocab_size, hp.tokenizer_cache, DABS_SEQ_LEN
        )

    def make_dataset(self, split: str, mode: Mode) -> TokenizedTexts:
        if split not in self._documents:
            raise ValueError(
                f"DabsTextDataModule: {self.source} has no {split!r} split (it has {list(self._documents)})"
            )
        assert self.tokenizer is not None  # load() ran
        return TokenizedTexts(self._documents[split], self.tokenizer)
