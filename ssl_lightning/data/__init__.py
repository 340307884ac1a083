"""Datasets and LightningDataModules: manifest-driven audio datasets, the embedded hares-mini
benchmark, and sharded streaming for pre-training at AudioSet scale."""

from ssl_lightning.data.audio_datamodule import AudioClassificationDataModule
from ssl_lightning.data.audioset import AudioSetDataModule
from ssl_lightning.data.cifar import CIFAR10DataModule, CIFAR100DataModule
from ssl_lightning.data.esc50 import ESC50DataModule
from ssl_lightning.data.hares_mini import HaresMiniDataModule
from ssl_lightning.data.image_folder import ImageFolderDataModule
from ssl_lightning.data.images import DigitsDataModule, ImageDataModule
from ssl_lightning.data.label_subsets import label_fraction_subset
from ssl_lightning.data.manifest import ManifestAudioDataset, ManifestRow, read_manifest
from ssl_lightning.data.sampling import WeightedDistributedSampler, inverse_frequency_weights
from ssl_lightning.data.sharding import ShardReport, shard_audio
from ssl_lightning.data.speech_commands import SpeechCommandsDataModule
from ssl_lightning.data.streaming import StreamingAudioDataModule

__all__ = [
    "AudioClassificationDataModule",
    "AudioSetDataModule",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DigitsDataModule",
    "ESC50DataModule",
    "HaresMiniDataModule",
    "ImageDataModule",
    "ImageFolderDataModule",
    "ManifestAudioDataset",
    "ManifestRow",
    "ShardReport",
    "SpeechCommandsDataModule",
    "StreamingAudioDataModule",
    "WeightedDistributedSampler",
    "inverse_frequency_weights",
    "label_fraction_subset",
    "read_manifest",
    "shard_audio",
]
