"""Datasets and LightningDataModules, grouped by modality and role:

    data/audio/      real audio data sets from their canonical layouts or Hugging Face copies (the HARES
                     tasks, LibriSpeech), any folder of audio files, hear-preprocess task folders
    data/image/      image data sets (CIFAR-10/100, ImageNet-style folders, scikit-learn's digits)
    data/text/       text corpora as token blocks (plain-text files, `datasets`, the embedded pydoc topics)
    data/dabs/       the DABS domains as DABS batches (images, text, speech, sensors, chest x-rays, captioned
                     images), with embedded stand-ins
    data/embedded/   benchmarks generated on first use (hares-mini)
    data/*.py        shared machinery: manifests, label subsets, samplers, sharding and streaming

Every datamodule is importable from here (`from ssl_lightning.data import ESC50DataModule`) and
usable by its short class name in recipes.
"""

from ssl_lightning.data.audio import (
    AudioClassificationDataModule,
    AudioFolderDataModule,
    AudioMNISTDataModule,
    AudioSetDataModule,
    BirdsongDataModule,
    ESC50DataModule,
    FluentSpeechCommandsDataModule,
    HearTaskDataModule,
    HubSource,
    LibriSpeechDataModule,
    LibriSpeechSpeakerDataModule,
    MagnaTagATuneDataModule,
    NSynthDataModule,
    SpeechCommandsDataModule,
    TUT18DataModule,
    UnlabeledAudioDataModule,
    VoxCeleb1DataModule,
    VoxForgeDataModule,
)
from ssl_lightning.data.dabs import (
    CaptionedDigitsDataModule,
    ChestXray8DataModule,
    CheXpertDataModule,
    DabsCIFAR10DataModule,
    DabsDataModule,
    DabsDigitsDataModule,
    DabsImageFolderDataModule,
    DabsLibriSpeechDataModule,
    DabsSpeechDataModule,
    DabsTextDataModule,
    GlueDataModule,
    MismatchedCaptionDataModule,
    MSCOCODataModule,
    PAMAP2DataModule,
    SyntheticSensorsDataModule,
    VQADataModule,
)
from ssl_lightning.data.embedded import HaresMiniDataModule
from ssl_lightning.data.image import (
    CIFAR10DataModule,
    CIFAR100DataModule,
    DigitsDataModule,
    ImageDataModule,
    ImageFolderDataModule,
)
from ssl_lightning.data.label_subsets import label_fraction_subset
from ssl_lightning.data.manifest import ManifestAudioDataset, ManifestRow, read_manifest
from ssl_lightning.data.sampling import WeightedDistributedSampler, inverse_frequency_weights
from ssl_lightning.data.sharding import ShardReport, shard_audio
from ssl_lightning.data.streaming import StreamingAudioDataModule
from ssl_lightning.data.text import TextDataModule

__all__ = [
    "AudioClassificationDataModule",
    "AudioFolderDataModule",
    "AudioMNISTDataModule",
    "AudioSetDataModule",
    "BirdsongDataModule",
    "CIFAR100DataModule",
    "CIFAR10DataModule",
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
    "DigitsDataModule",
    "ESC50DataModule",
    "FluentSpeechCommandsDataModule",
    "GlueDataModule",
    "HaresMiniDataModule",
    "HearTaskDataModule",
    "HubSource",
    "ImageDataModule",
    "ImageFolderDataModule",
    "LibriSpeechDataModule",
    "LibriSpeechSpeakerDataModule",
    "MSCOCODataModule",
    "MagnaTagATuneDataModule",
    "ManifestAudioDataset",
    "ManifestRow",
    "MismatchedCaptionDataModule",
    "NSynthDataModule",
    "PAMAP2DataModule",
    "ShardReport",
    "SpeechCommandsDataModule",
    "StreamingAudioDataModule",
    "SyntheticSensorsDataModule",
    "TUT18DataModule",
    "TextDataModule",
    "UnlabeledAudioDataModule",
    "VQADataModule",
    "VoxCeleb1DataModule",
    "VoxForgeDataModule",
    "WeightedDistributedSampler",
    "inverse_frequency_weights",
    "label_fraction_subset",
    "read_manifest",
    "shard_audio",
]
