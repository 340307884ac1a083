"""LightningModules, one file per method family, all following `SSLMethod`'s contract."""

from ssl_lightning.methods.base import SSLMethod, load_method
from ssl_lightning.methods.beats import MaskedAudioModeling
from ssl_lightning.methods.beats_tokenizer import SelfDistilledTokenizerTraining
from ssl_lightning.methods.frozen import FrozenEncoder
from ssl_lightning.methods.simclr import SimCLR
from ssl_lightning.methods.supervised import SupervisedClassifier

__all__ = [
    "FrozenEncoder",
    "MaskedAudioModeling",
    "SSLMethod",
    "SelfDistilledTokenizerTraining",
    "SimCLR",
    "SupervisedClassifier",
    "load_method",
]
