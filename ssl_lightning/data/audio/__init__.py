"""Audio data sets read from their canonical layouts (or their Hugging Face copies): labelled ones on the
shared manifest base (the HARES tasks among them), unlabeled pre-training speech and audio folders on
`UnlabeledAudioDataModule`, and hear-preprocess task folders."""

from ssl_lightning.data.audio.audio_mnist import AudioMNISTDataModule
from ssl_lightning.data.audio.audioset import AudioSetDataModule
from ssl_lightning.data.audio.birdsong import BirdsongDataModule
from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule
from ssl_lightning.data.audio.esc50 import ESC50DataModule
from ssl_lightning.data.audio.fluent import FluentSpeechCommandsDataModule
from ssl_lightning.data.audio.folder import AudioFolderDataModule, UnlabeledAudioDataModule
from ssl_lightning.data.audio.hear_task import HearTaskDataModule
from ssl_lightning.data.audio.hub import HubSource
from ssl_lightning.data.audio.librispeech import LibriSpeechDataModule
from ssl_lightning.data.audio.librispeech_speaker import LibriSpeechSpeakerDataModule
from ssl_lightning.data.audio.magnatagatune import MagnaTagATuneDataModule
from ssl_lightning.data.audio.nsynth import NSynthDataModule
from ssl_lightning.data.audio.speech_commands import SpeechCommandsDataModule
from ssl_lightning.data.audio.tut18 import TUT18DataModule
from ssl_lightning.data.audio.voxceleb import VoxCeleb1DataModule
from ssl_lightning.data.audio.voxforge import VoxForgeDataModule

__all__ = [
    "AudioClassificationDataModule",
    "AudioFolderDataModule",
    "AudioMNISTDataModule",
    "AudioSetDataModule",
    "BirdsongDataModule",
    "ESC50DataModule",
    "FluentSpeechCommandsDataModule",
    "HearTaskDataModule",
    "HubSource",
    "LibriSpeechDataModule",
    "LibriSpeechSpeakerDataModule",
    "MagnaTagATuneDataModule",
    "NSynthDataModule",
    "SpeechCommandsDataModule",
    "TUT18DataModule",
    "UnlabeledAudioDataModule",
    "VoxCeleb1DataModule",
    "VoxForgeDataModule",
]
