"""Text corpora for masked-language-model pre-training (data2vec text): RoBERTa-style byte-level BPE,
fairseq-style token blocks, and `TextDataModule`."""

from ssl_lightning.data.text.bpe import load_tokenizer_dir, train_bpe
from ssl_lightning.data.text.datamodule import TextDataModule

__all__ = ["TextDataModule", "load_tokenizer_dir", "train_bpe"]
