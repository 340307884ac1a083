"""DABS datamodules (Tamkin et al. 2021): one per domain, serving DABS batches (`base.py`)."""

from ssl_lightning.data.dabs.base import DabsDataModule
from ssl_lightning.data.dabs.captioned import CaptionedDigitsDataModule
from ssl_lightning.data.dabs.coco import MismatchedCaptionDataModule, MSCOCODataModule
from ssl_lightning.data.dabs.folders import DabsImageFolderDataModule
from ssl_lightning.data.dabs.glue import GlueDataModule
from ssl_lightning.data.dabs.images import DabsCIFAR10DataModule, DabsDigitsDataModule
from ssl_lightning.data.dabs.sensors import PAMAP2DataModule, SyntheticSensorsDataModule
from ssl_lightning.data.dabs.speech import DabsLibriSpeechDataModule, DabsSpeechDataModule
from ssl_lightning.data.dabs.text import DabsTextDataModule
from ssl_lightning.data.dabs.vqa import VQADataModule
from ssl_lightning.data.dabs.xrays import ChestXray8DataModule, CheXpertDataModule

__all__ = [
    "CaptionedDigitsDataModule",
    "CheXpertDataModule",
    "ChestXray8DataModule",
    "DabsCIFAR10DataModule",
    "DabsDataModule",
    "DabsDigitsDataModule",
    "DabsImageFolderDataModule",
    "DabsLibriSpeechDataModule",
    "DabsSpeechDataModule",
    "DabsTextDataModule",
    "GlueDataModule",
    "MSCOCODataModule",
    "MismatchedCaptionDataModule",
    "PAMAP2DataModule",
    "SyntheticSensorsDataModule",
    "VQADataModule",
]
