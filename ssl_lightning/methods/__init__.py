"""LightningModules, one file per method family, all following `SSLMethod`'s contract."""

from ssl_lightning.methods.base import SSLMethod, load_method
from ssl_lightning.methods.beats import MaskedAudioModeling
from ssl_lightning.methods.beats_tokenizer import SelfDistilledTokenizerTraining
from ssl_lightning.methods.byol import BYOL
from ssl_lightning.methods.dabs import EmbeddingRQ, EMix, ShED
from ssl_lightning.methods.data2vec import Data2Vec
from ssl_lightning.methods.frozen import FrozenEncoder
from ssl_lightning.methods.simclr import SimCLR
from ssl_lightning.methods.supervised import SupervisedClassifier
from ssl_lightning.methods.tokenizer_checkpoint import load_tokenizer
from ssl_lightning.methods.two_view import ContrastiveQuantConfig, TwoViewMethod

__all__ = [
    "BYOL",
    "ContrastiveQuantConfig",
    "Data2Vec",
    "EMix",
    "EmbeddingRQ",
    "FrozenEncoder",
    "MaskedAudioModeling",
    "SSLMethod",
    "SelfDistilledTokenizerTraining",
    "ShED",
    "SimCLR",
    "SupervisedClassifier",
    "TwoViewMethod",
    "load_method",
    "load_tokenizer",
]
