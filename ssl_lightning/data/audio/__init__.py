"""Audio data sets read from their canonical on-disk layouts: labelled ones on the shared manifest base,
unlabeled pre-training speech and audio folders on `UnlabeledAudioDataModule`."""

from ssl_lightning.data.audio.audioset import AudioSetDataModule
from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule
from ssl_lightning.data.audio.esc50 import ESC50DataModule
from ssl_lightning.data.audio.folder import AudioFolderDataModule, UnlabeledAudioDataModule
from ssl_lightning.data.audio.librispeech import LibriSpeechDataModule
from ssl_lightning.data.audio.speech_commands import SpeechCommandsDataModule

__all__ = [
    "AudioClassificationDataModule",
    "AudioFolderDataModule",
    "AudioSetDataModule",
    "ESC50DataModule",
    "LibriSpeechDataModule",
    "SpeechCommandsDataModule",
    "UnlabeledAudioDataModule",
]
