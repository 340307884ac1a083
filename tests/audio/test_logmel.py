import math

import pytest
import torch
import torchaudio

from ssl_lightning.audio import LogMelSpectrogram


def test_byol_a_segment_gives_96_frames_of_64_mels() -> None:
    features = LogMelSpectrogram()(torch.randn(3, 15200))
    assert features.shape == (3, 96, 64)
    assert features.dtype == torch.float32


def test_equals_log_of_torchaudio_mel_power_time_major() -> None:
    waveform = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    reference = torchaudio.transforms.MelSpectrogram(
        sample_rate=16000, n_fft=1024, win_length=1024, hop_length=160, f_min=60.0, f_max=7800.0, n_mels=64
    )(waveform)
    expected = torch.log(reference + torch.finfo(torch.float32).eps).transpose(1, 2)
    torch.testing.assert_close(LogMelSpectrogram()(waveform), expected)


def test_silence_is_log_eps() -> None:
    features = LogMelSpectrogram()(torch.zeros(1, 1600))
    torch.testing.assert_close(features, torch.full_like(features, math.log(torch.finfo(torch.float32).eps)))


def test_tone_peaks_at_the_mel_band_centred_on_its_frequency() -> None:
    """A 1 kHz tone peaks in the band whose centre (HTK mel scale, 60..7800 Hz) is closest to 1 kHz."""
    t = torch.arange(16000) / 16000
    features = LogMelSpectrogram()(torch.sin(2 * math.pi * 1000.0 * t)[None])

    def mel(f: float) -> float:
        return 2595.0 * math.log10(1.0 + f / 700.0)

    delta = (mel(7800.0) - mel(60.0)) / 65
    expected_band = round((mel(1000.0) - mel(60.0)) / delta) - 1
    peak_bands = features[0, 10:-10].argmax(dim=-1)
    assert torch.all(peak_bands == expected_band)


def test_rejects_unbatched_input() -> None:
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        LogMelSpectrogram()(torch.zeros(16000))
