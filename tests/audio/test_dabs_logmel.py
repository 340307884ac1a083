"""DABS's speech front-end against worked examples of librosa's definitions (Slaney mel, power_to_db)."""

import math

import pytest
import torch

from ssl_lightning.audio.dabs_logmel import (
    DABS_NUM_SAMPLES,
    DabsLogMel,
    dabs_cut_or_pad,
    power_to_db,
)


def slaney_mel(hz: float) -> float:
    """librosa's hz_to_mel(htk=False): linear 3 / 200 mel per Hz below 1 kHz, log above (27 mels per
    factor 6.4)."""
    return 3 * hz / 200 if hz < 1000 else 15 + math.log(hz / 1000) * 27 / math.log(6.4)


def slaney_hz(mel: float) -> float:
    return 200 * mel / 3 if mel < 15 else 1000 * math.exp((mel - 15) * math.log(6.4) / 27)


def tone(hz: float, amplitude: float = 0.5) -> torch.Tensor:
    return amplitude * torch.sin(2 * math.pi * hz * torch.arange(DABS_NUM_SAMPLES) / 16000)[None]


def test_slaney_scale_worked_values():
    assert slaney_mel(500) == pytest.approx(7.5)
    assert slaney_mel(1000) == pytest.approx(15.0)
    assert slaney_mel(2000) == pytest.approx(25.0819, abs=1e-4)  # 15 + 27 ln 2 / ln 6.4
    assert slaney_hz(slaney_mel(3000)) == pytest.approx(3000)


def test_filterbank_is_librosa_slaney_triangles():
    """Filter i rises from edge i to i + 1 and falls to i + 2 (226 edges equally spaced in Slaney mels
    from 0 to 8 kHz), scaled by 2 / (f[i + 2] - f[i]); FFT bin k lies at k * 16000 / 2048 Hz."""
    fb = DabsLogMel().mel_spectrogram.mel_scale.fb  # [1025 bins, 224 mels]
    assert fb.shape == (1025, 224)
    top = slaney_mel(8000)
    edges = [slaney_hz(top * j / 225) for j in range(226)]
    for k, i in ((128, 74), (128, 73), (40, 20), (600, 200)):
        f = k * 16000 / 2048
        lo, mid, hi = edges[i : i + 3]
        weight = max(0.0, min((f - lo) / (mid - lo), (hi - f) / (hi - mid))) * 2 / (hi - lo)
        assert fb[k, i].item() == pytest.approx(weight, rel=1e-4, abs=1e-9)
    assert fb[128, 74] > 0 and fb[128, 73] > 0  # 1 kHz lies in both triangles


def test_frames_from_dabs_length_with_centring():
    assert 1 + DABS_NUM_SAMPLES // 672 == 224
    assert DabsLogMel()(tone(440)).shape == (1, 1, 224, 224)
    assert DabsLogMel()(torch.zeros(1, 672 * 224)).shape == (1, 1, 224, 225)


@pytest.mark.parametrize("hz", [1000.0, 3000.0])
def test_pure_tone_energy_in_its_mel_filter(hz):
    fb = DabsLogMel().mel_spectrogram.mel_scale.fb
    top = slaney_mel(8000)
    edges = [slaney_hz(top * j / 225) for j in range(226)]
    weights = [
        max(0.0, min((hz - lo) / (mid - lo), (hi - hz) / (hi - mid))) * 2 / (hi - lo)
        for lo, mid, hi in zip(edges, edges[1:], edges[2:], strict=False)
    ]
    expected = max(range(224), key=weights.__getitem__)
    mel = DabsLogMel().mel_spectrogram(tone(hz))[0]  # [224, 224]
    assert mel.mean(dim=1).argmax().item() == expected
    assert fb.shape[1] == len(weights)


def test_power_to_db_worked_example():
    power = torch.tensor([[1.0, 100.0], [1e-12, 1e-3]])
    assert power_to_db(power, top_db=None).flatten().tolist() == pytest.approx([0.0, 20.0, -100.0, -30.0])
    assert power_to_db(power).flatten().tolist() == pytest.approx([0.0, 20.0, -60.0, -30.0])  # 20 - 80
    assert power_to_db(power, ref=10.0, top_db=None).flatten().tolist() == pytest.approx(
        [-10.0, 10.0, -110.0, -40.0]
    )
    batch = torch.stack([power, power * 1e4])  # top_db is per spectrogram
    assert power_to_db(batch)[1].flatten().tolist() == pytest.approx([40.0, 60.0, -20.0, 10.0])


def test_log_of_squared_power_and_normalisation():
    """power_to_db(S ** 2): doubling the amplitude quadruples S, so the peak rises 40 log10 2 dB."""
    quiet, loud = DabsLogMel()(tone(1000, 0.25)), DabsLogMel()(tone(1000, 0.5))
    assert (loud.max() - quiet.max()).item() == pytest.approx(40 * math.log10(2), abs=1e-3)
    assert (quiet.max() - quiet.min()).item() == pytest.approx(80.0, abs=1e-3)
    normalised = DabsLogMel(mean=-20.0, std=10.0)(tone(1000, 0.25))
    torch.testing.assert_close(normalised, (quiet + 20.0) / 10.0)
    with pytest.raises(ValueError, match="both mean and a positive std"):
        DabsLogMel(mean=1.0)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        DabsLogMel()(torch.zeros(10))


def test_cut_or_pad_as_dabs():
    wave = torch.arange(1.0, 7.0)
    assert dabs_cut_or_pad(wave, "start", 4).tolist() == [1, 2, 3, 4]
    assert dabs_cut_or_pad(wave, "end", 4).tolist() == [3, 4, 5, 6]
    assert dabs_cut_or_pad(wave, "end", 8).tolist() == [1, 2, 3, 4, 5, 6, 0, 0]  # padded after, any side
    assert dabs_cut_or_pad(wave[:2]).shape == (DABS_NUM_SAMPLES,)
    with pytest.raises(ValueError, match="side"):
        dabs_cut_or_pad(wave, "middle", 4)
