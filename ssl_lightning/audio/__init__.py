"""Audio front-end: decoding, fixed-length clips and batching, Kaldi fbank and log-mel features."""

from ssl_lightning.audio.clips import collate_audio, crop_or_pad, spaced_crops, split_subclips
from ssl_lightning.audio.fbank import (
    BEATS_FBANK_MEAN,
    BEATS_FBANK_STD,
    KaldiFbank,
    frame_padding_mask,
    kaldi_fbank,
    normalize_fbank,
    num_frames,
)
from ssl_lightning.audio.io import AudioDecodeError, load_audio, load_audio_with_rate
from ssl_lightning.audio.logmel import LogMelSpectrogram

__all__ = [
    "BEATS_FBANK_MEAN",
    "BEATS_FBANK_STD",
    "AudioDecodeError",
    "KaldiFbank",
    "LogMelSpectrogram",
    "collate_audio",
    "crop_or_pad",
    "frame_padding_mask",
    "kaldi_fbank",
    "load_audio",
    "load_audio_with_rate",
    "normalize_fbank",
    "num_frames",
    "spaced_crops",
    "split_subclips",
]
