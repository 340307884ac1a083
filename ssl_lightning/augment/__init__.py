"""Augmentations that run batched on the accelerator."""

from ssl_lightning.augment.byol_a_views import ByolAViews
from ssl_lightning.augment.hares_views import HaresViews
from ssl_lightning.augment.image_views import ImageViews
from ssl_lightning.augment.memory_mixup import MemoryMixup
from ssl_lightning.augment.random_resize_crop import RandomResizeCrop
from ssl_lightning.augment.randomized_quantization import RandomizedQuantization
from ssl_lightning.augment.specaugment import SpecAugment

__all__ = [
    "ByolAViews",
    "HaresViews",
    "ImageViews",
    "MemoryMixup",
    "RandomResizeCrop",
    "RandomizedQuantization",
    "SpecAugment",
]
