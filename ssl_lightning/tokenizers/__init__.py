"""Acoustic tokenizers: waveform -> discrete patch labels, the targets of masked audio modelling."""

from ssl_lightning.tokenizers.beats_tokenizer import SelfDistilledTokenizer, SelfDistilledTokenizerConfig

__all__ = ["SelfDistilledTokenizer", "SelfDistilledTokenizerConfig"]
