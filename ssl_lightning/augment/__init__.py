"""Augmentations that run batched on the accelerator."""

from ssl_lightning.augment.randomized_quantization import RandomizedQuantization
from ssl_lightning.augment.specaugment import SpecAugment

__all__ = ["RandomizedQuantization", "SpecAugment"]
