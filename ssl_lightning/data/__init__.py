"""Datasets and LightningDataModules: manifest-driven audio datasets, the embedded hares-mini
benchmark, and sharded streaming for pre-training at AudioSet scale."""

from ssl_lightning.data.hares_mini import HaresMiniDataModule
from ssl_lightning.data.images import DigitsDataModule
from ssl_lightning.data.manifest import ManifestAudioDataset, ManifestRow, read_manifest
from ssl_lightning.data.sharding import ShardReport, shard_audio
from ssl_lightning.data.streaming import StreamingAudioDataModule

__all__ = [
    "DigitsDataModule",
    "HaresMiniDataModule",
    "ManifestAudioDataset",
    "ManifestRow",
    "ShardReport",
    "StreamingAudioDataModule",
    "read_manifest",
    "shard_audio",
]
