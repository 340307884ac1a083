"""Acoustic tokenizers: waveform -> discrete patch labels, the targets of masked audio modelling."""

from ssl_lightning.tokenizers.beats_tokenizer import SelfDistilledTokenizer, SelfDistilledTokenizerConfig
from ssl_lightning.tokenizers.random_projection import RandomProjectionTokenizer

__all__ = [
    "RandomProjectionTokenizer",
    "SelfDistilledTokenizer",
    "SelfDistilledTokenizerConfig",
]
