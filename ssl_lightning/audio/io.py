"""Decode audio files to mono float32 waveforms with soundfile (libsndfile: wav, flac, ogg, ...).

`torchaudio.load` is avoided on purpose: from torchaudio 2.9 it needs torchcodec and FFmpeg.
A file that cannot give a usable waveform raises; it never turns into a silent clip of zeros.
"""

from pathlib import Path

import soundfile
import torch
import torchaudio.functional
from einops import reduce
from torch import Tensor


class AudioDecodeError(RuntimeError):
    """An audio file exists but gives no usable waveform (corrupt, unsupported, empty or non-finite)."""


def load_audio_with_rate(path: str | Path) -> tuple[Tensor, int]:
    """Decode `path` at its own sample rate: (mono float32 waveform `[T]`, sample rate in Hz).

    Channels are mixed down by their mean. Raises FileNotFoundError when `path` does not exist and
    AudioDecodeError when it is unreadable, empty or holds non-finite samples.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        samples, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(
            f"cannot decode audio file {path}: {error}. Check that it is a complete wav/flac/ogg file "
            f"(formats readable by libsndfile {soundfile.__libsndfile_version__}); re-encode it otherwise"
        ) from error
    if samples.shape[0] == 0:
        raise AudioDecodeError(
            f"audio file {path} holds 0 samples; remove it from the data set or replace it"
        )
    waveform = reduce(torch.from_numpy(samples), "t c -> t", "mean")
    if not torch.isfinite(waveform).all():
        raise AudioDecodeError(
            f"audio file {path} holds non-finite samples (NaN or inf); re-encode or remove it"
        )
    return waveform, int(sample_rate)


def load_audio(path: str | Path, sample_rate: int | None = 16000) -> Tensor:
    """Decode `path` to a mono float32 waveform `[T]`, resampled to `sample_rate` Hz (None: the file's rate).

    Resampling uses `torchaudio.functional.resample` (windowed sinc) and gives
    ceil(T * sample_rate / file_rate) samples. Errors as in `load_audio_with_rate`.
    """
    if sample_rate is not None and (not isinstance(sample_rate, int) or sample_rate <= 0):
        raise ValueError(f"sample_rate must be a positive int or None; got {sample_rate!r}")
    waveform, file_rate = load_audio_with_rate(path)
    if sample_rate is None or sample_rate == file_rate:
        return waveform
    return torchaudio.functional.resample(waveform, orig_freq=file_rate, new_freq=sample_rate)
