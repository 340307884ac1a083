"""Image data sets: CIFAR pickles, ImageNet-style folders and the embedded digits, on one base."""

from ssl_lightning.data.image.cifar import CIFAR10DataModule, CIFAR100DataModule
from ssl_lightning.data.image.datamodule import ImageDataModule
from ssl_lightning.data.image.digits import DigitsDataModule
from ssl_lightning.data.image.folder import ImageFolderDataModule

__all__ = [
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
]
