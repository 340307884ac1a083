"""Audio data sets read from their canonical on-disk layouts, on the shared manifest base."""

from ssl_lightning.data.audio.audioset import AudioSetDataModule
from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule
from ssl_lightning.data.audio.esc50 import ESC50DataModule
from ssl_lightning.data.audio.speech_commands import SpeechCommandsDataModule

__all__ = [
    "AudioClassificationDataModule",
    "AudioSetDataModule",
    "ESC50DataModule",
    "SpeechCommandsDataModule",
]
