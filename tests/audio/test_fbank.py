from pathlib import Path

import pytest
import torch
import torchaudio

from ssl_lightning.audio import (
    BEATS_FBANK_MEAN,
    BEATS_FBANK_STD,
    KaldiFbank,
    frame_padding_mask,
    kaldi_fbank,
    normalize_fbank,
    num_frames,
)

BEATS_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "beats" / "inputs.pt"


def reference_fbank(waveform: torch.Tensor, **kwargs) -> torch.Tensor:
    """torchaudio's kaldi.fbank applied row by row, with our argument names."""
    kwargs = dict(kwargs)
    kwargs["sample_frequency"] = kwargs.pop("sample_rate", 16000)
    kwargs.setdefault("num_mel_bins", 128)
    return torch.stack([torchaudio.compliance.kaldi.fbank(row[None], **kwargs) for row in waveform])


def int16_scale_noise(
    batch: int, samples: int, seed: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, samples, generator=generator, dtype=dtype) * 2 - 1) * 32768


CONFIGS = [
    {},
    {"frame_length": 20.0, "frame_shift": 7.5, "num_mel_bins": 40},
    {"frame_length": 32.0, "frame_shift": 12.0, "num_mel_bins": 80, "window_type": "hanning"},
    {"window_type": "hamming", "use_power": False},
    {"window_type": "rectangular", "preemphasis_coefficient": 0.0, "remove_dc_offset": False},
    {"round_to_power_of_two": False, "window_type": "hanning"},
    {"snip_edges": False},
    {"snip_edges": False, "frame_length": 5.0, "frame_shift": 10.0},
    {"use_energy": True},
    {"use_log_fbank": False, "num_mel_bins": 23},
    {"sample_rate": 8000, "low_freq": 60.0, "high_freq": -400.0, "num_mel_bins": 64},
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(sorted(c.items())) for c in CONFIGS])
@pytest.mark.parametrize("num_samples", [8000, 6173])
def test_matches_torchaudio_row_by_row(config: dict, num_samples: int) -> None:
    waveform = int16_scale_noise(3, num_samples, seed=num_samples)
    expected = reference_fbank(waveform, **config)
    actual = kaldi_fbank(waveform, **config)
    assert actual.shape == expected.shape
    assert actual.dtype == torch.float32
    torch.testing.assert_close(actual, expected, atol=1e-3, rtol=1e-5)


def test_float64_is_preserved_and_matches() -> None:
    waveform = int16_scale_noise(2, 8000, seed=1, dtype=torch.float64)
    actual = kaldi_fbank(waveform, num_mel_bins=64)
    assert actual.dtype == torch.float64
    torch.testing.assert_close(actual, reference_fbank(waveform, num_mel_bins=64), atol=1e-6, rtol=0)


def test_half_input_is_computed_in_float32_and_cast_back() -> None:
    waveform = int16_scale_noise(2, 8000, seed=2) / 32768
    actual = kaldi_fbank(waveform.half())
    assert actual.dtype == torch.float16
    expected = kaldi_fbank(waveform.half().float())
    torch.testing.assert_close(actual.float(), expected, atol=1e-2, rtol=1e-3)


def test_rows_are_independent_across_frame_blocks() -> None:
    """A batch large enough to be processed in several frame blocks equals each clip computed alone."""
    waveform = int16_scale_noise(40, 16000, seed=3)
    waveform[7] = 0.0
    waveform[11] *= 1e-3
    batched = kaldi_fbank(waveform)
    alone = torch.cat([kaldi_fbank(row[None]) for row in waveform])
    assert torch.equal(batched, alone)
    assert torch.all(batched[7] == torch.log(torch.tensor(torch.finfo(torch.float32).eps)))
    torch.testing.assert_close(
        batched[[0, 11, 39]], reference_fbank(waveform[[0, 11, 39]]), atol=1e-3, rtol=0
    )


def test_beats_fixture_matches_official_preprocess() -> None:
    fixture = torch.load(BEATS_FIXTURE, map_location="cpu", weights_only=True)
    fbank = KaldiFbank()(fixture["waveform"])
    assert fbank.shape == fixture["fbank"].shape == (2, 198, 128)
    assert (fbank - fixture["fbank"]).abs().max().item() <= 1e-4


def test_kaldi_fbank_module_scales_and_normalises() -> None:
    waveform = int16_scale_noise(2, 8000, seed=4) / 32768
    expected = (reference_fbank(waveform * 32768) - BEATS_FBANK_MEAN) / (2 * BEATS_FBANK_STD)
    torch.testing.assert_close(KaldiFbank()(waveform), expected, atol=1e-4, rtol=0)
    raw = KaldiFbank(normalize=False, num_mel_bins=64)(waveform)
    torch.testing.assert_close(raw, reference_fbank(waveform * 32768, num_mel_bins=64), atol=1e-3, rtol=0)


def test_normalize_fbank_divides_by_twice_the_std() -> None:
    fbank = torch.tensor([BEATS_FBANK_MEAN, BEATS_FBANK_MEAN + 2 * BEATS_FBANK_STD, 0.0])
    expected = torch.tensor([0.0, 1.0, -BEATS_FBANK_MEAN / (2 * BEATS_FBANK_STD)])
    torch.testing.assert_close(normalize_fbank(fbank), expected)
    torch.testing.assert_close(normalize_fbank(torch.tensor([3.0]), mean=1.0, std=0.5), torch.tensor([2.0]))


@pytest.mark.parametrize(
    ("num_samples", "expected"), [(32000, 198), (160000, 998), (400, 1), (559, 1), (560, 2), (399, 0)]
)
def test_num_frames_snip_edges(num_samples: int, expected: int) -> None:
    assert num_frames(num_samples) == expected


def test_num_frames_agrees_with_fbank_output() -> None:
    for frame_length, frame_shift in [(25.0, 10.0), (20.0, 7.5)]:
        fbank = kaldi_fbank(torch.randn(1, 12345), frame_length=frame_length, frame_shift=frame_shift)
        assert fbank.shape[1] == num_frames(12345, frame_length=frame_length, frame_shift=frame_shift)


def test_frame_padding_mask_marks_frames_starting_in_padding() -> None:
    padding_mask = torch.zeros(2, 1000, dtype=torch.bool)
    padding_mask[1, 400:] = True
    frame_mask = frame_padding_mask(padding_mask, num_frames(1000))
    assert frame_mask.shape == (2, 4)
    # Frames start at samples 0, 160, 320, 480: only the last starts in the padding.
    assert frame_mask.tolist() == [[False] * 4, [False, False, False, True]]


def test_frame_padding_mask_rejects_too_many_frames() -> None:
    with pytest.raises(ValueError, match="num_frames=5"):
        frame_padding_mask(torch.zeros(1, 1000, dtype=torch.bool), 5)


def test_cached_constants_made_in_inference_mode_still_support_autograd() -> None:
    with torch.inference_mode():
        kaldi_fbank(torch.randn(1, 4000), num_mel_bins=37)
    waveform = torch.randn(2, 4000, requires_grad=True)
    kaldi_fbank(waveform, num_mel_bins=37).sum().backward()
    assert waveform.grad is not None and waveform.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"dither": 1.0}, NotImplementedError, "dither=1.0"),
        ({"window_type": "blackman"}, ValueError, "window_type='blackman'"),
        ({"frame_length": 0.1}, ValueError, "window 1"),
        ({"high_freq": 9000.0}, ValueError, "high_freq=9000.0"),
        ({"num_mel_bins": 3}, ValueError, "num_mel_bins"),
        ({"preemphasis_coefficient": 1.5}, ValueError, "preemphasis_coefficient"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        kaldi_fbank(torch.randn(1, 4000), **kwargs)


def test_bad_waveforms_raise() -> None:
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        kaldi_fbank(torch.randn(4000))
    with pytest.raises(ValueError, match="399 samples"):
        kaldi_fbank(torch.randn(2, 399))
    with pytest.raises(TypeError, match="floating point"):
        kaldi_fbank(torch.zeros(1, 4000, dtype=torch.int16))
