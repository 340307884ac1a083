import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.audio import AudioDecodeError, load_audio, load_audio_with_rate


def sine(frequency: float, sample_rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.mark.parametrize(("suffix", "atol"), [(".wav", 1e-4), (".flac", 1e-4), (".ogg", 0.1)])
def test_formats_decode_to_mono_float32(tmp_path: Path, suffix: str, atol: float) -> None:
    samples = sine(440.0, 16000, 0.5)
    path = tmp_path / f"tone{suffix}"
    soundfile.write(path, samples, 16000)
    waveform = load_audio(path)
    assert waveform.dtype == torch.float32
    assert waveform.shape == (8000,)
    torch.testing.assert_close(waveform, torch.from_numpy(samples), atol=atol, rtol=0)


def test_stereo_is_mixed_down_by_mean(tmp_path: Path) -> None:
    left = np.full(1000, 0.5, dtype=np.float32)
    right = np.linspace(-0.25, 0.25, 1000, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    waveform, sample_rate = load_audio_with_rate(path)
    assert sample_rate == 16000
    torch.testing.assert_close(waveform, torch.from_numpy((left + right) / 2))


def test_resampling_44100_to_16000(tmp_path: Path) -> None:
    samples = sine(1000.0, 44100, 1.003)
    path = tmp_path / "cd.wav"
    soundfile.write(path, samples, 44100, subtype="FLOAT")
    waveform = load_audio(path, sample_rate=16000)
    assert waveform.shape == (math.ceil(len(samples) * 16000 / 44100),)
    expected = 0.5 * torch.sin(2 * math.pi * 1000.0 * torch.arange(waveform.shape[0]) / 16000)
    # Away from the edges the resampled tone equals the tone sampled at 16 kHz.
    torch.testing.assert_close(waveform[200:-200], expected[200:-200], atol=2e-3, rtol=0)


def test_sample_rate_none_keeps_the_file_rate(tmp_path: Path) -> None:
    path = tmp_path / "low.wav"
    soundfile.write(path, sine(100.0, 8000, 0.25), 8000)
    assert load_audio(path, sample_rate=None).shape == (2000,)
    assert load_audio_with_rate(path)[1] == 8000
    assert load_audio(path).shape == (4000,)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_audio(path)


def test_corrupt_file_raises_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError, match="garbage.wav") as info:
        load_audio(path)
    assert "re-encode" in str(info.value)


def test_truncated_header_raises_decode_error(tmp_path: Path) -> None:
    whole = tmp_path / "whole.wav"
    soundfile.write(whole, sine(440.0, 16000, 0.1), 16000)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[:30])
    with pytest.raises(AudioDecodeError, match="truncated.wav"):
        load_audio(truncated)


def test_empty_file_raises_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioDecodeError, match=r"empty.wav holds 0 samples"):
        load_audio(path)


def test_non_finite_samples_raise_decode_error(tmp_path: Path) -> None:
    samples = sine(440.0, 16000, 0.1)
    samples[17] = np.nan
    path = tmp_path / "nan.wav"
    soundfile.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match="nan.wav holds non-finite"):
        load_audio(path)


def test_bad_sample_rate_raises(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    soundfile.write(path, sine(440.0, 16000, 0.1), 16000)
    with pytest.raises(ValueError, match="sample_rate"):
        load_audio(path, sample_rate=0)
