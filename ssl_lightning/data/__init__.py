"""Datasets and LightningDataModules: manifest-driven audio datasets and the embedded hares-mini benchmark."""

from ssl_lightning.data.hares_mini import HaresMiniDataModule
from ssl_lightning.data.manifest import ManifestAudioDataset, ManifestRow, read_manifest

__all__ = ["HaresMiniDataModule", "ManifestAudioDataset", "ManifestRow", "read_manifest"]
