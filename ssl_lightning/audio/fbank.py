"""Batched Kaldi-compatible log-mel filterbank (the BEATs / AST front-end).

`kaldi_fbank` reproduces `torchaudio.compliance.kaldi.fbank` (Kaldi's `compute-fbank-feats`) for a
whole batch at once, on any device: framing, DC-offset removal, pre-emphasis, windowing, power
spectrum, triangular mel banks on Kaldi's mel scale (1127 ln(1 + f/700)) and a log floored at float32
machine epsilon. `KaldiFbank` adds the BEATs int16 scaling and normalisation (beats_facts.md, 3.1).
"""

import functools
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

BEATS_FBANK_MEAN = 15.41663
BEATS_FBANK_STD = 6.55582

WINDOW_TYPES = ("povey", "hanning", "hamming", "rectangular")
_MS_PER_SECOND = 1000.0
_FLOAT32_EPS = torch.finfo(torch.float32).eps
_LOW_PRECISION = (torch.float16, torch.bfloat16)
# On CPU the frames are processed in blocks of about this many (over the whole batch) so that every
# intermediate stays in cache; a single block over the batch is several times slower on a 2-core CPU.
_CPU_BLOCK_FRAMES = 1024


def _window_samples(sample_rate: float, milliseconds: float) -> int:
    """Samples in `milliseconds` at `sample_rate`, truncated as Kaldi does."""
    return int(sample_rate * milliseconds / _MS_PER_SECOND)


def _snip_edges_frames(num_samples: int, window_size: int, window_shift: int) -> int:
    """Whole frames of `window_size` samples every `window_shift` samples within `num_samples`."""
    return 0 if num_samples < window_size else 1 + (num_samples - window_size) // window_shift


def num_frames(
    num_samples: int, sample_rate: int = 16000, frame_length: float = 25.0, frame_shift: float = 10.0
) -> int:
    """Frames `kaldi_fbank` yields for `num_samples` with `snip_edges=True` (0 when shorter than a frame).

    Equals 1 + (num_samples - window) // shift: 198 frames for 2 s and 998 for 10 s at 16 kHz.
    """
    return _snip_edges_frames(
        num_samples, _window_samples(sample_rate, frame_length), _window_samples(sample_rate, frame_shift)
    )


def frame_padding_mask(
    padding_mask: Tensor,
    num_frames: int,
    sample_rate: int = 16000,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
) -> Tensor:
    """Map a sample padding mask `[B, T]` onto `num_frames` fbank frames: bool `[B, num_frames]`.

    A frame is padding (True) when its first sample is padding. For the usual end padding this means
    the frame holds no real audio at all; a frame straddling the boundary counts as real.
    `num_frames` may not exceed the frames that fit in T samples (`num_frames(T, ...)`).
    """
    if padding_mask.dim() != 2 or padding_mask.dtype != torch.bool:
        raise ValueError(
            f"padding_mask must be a bool tensor [B, T]; got dtype {padding_mask.dtype} "
            f"and shape {tuple(padding_mask.shape)}"
        )
    window_shift = _window_samples(sample_rate, frame_shift)
    available = _snip_edges_frames(
        padding_mask.shape[-1], _window_samples(sample_rate, frame_length), window_shift
    )
    if not 0 <= num_frames <= available:
        raise ValueError(
            f"num_frames={num_frames} is not in [0, {available}], the frames that fit in "
            f"{padding_mask.shape[-1]} samples at {sample_rate} Hz with frame_length={frame_length} ms"
        )
    return padding_mask[:, ::window_shift][:, :num_frames]


def normalize_fbank(fbank: Tensor, mean: float = BEATS_FBANK_MEAN, std: float = BEATS_FBANK_STD) -> Tensor:
    """BEATs/AST normalisation `(fbank - mean) / (2 * std)` (twice the std, giving std about 0.5)."""
    return (fbank - mean) / (2.0 * std)


@functools.lru_cache(maxsize=32)
def _mel_banks(
    num_mel_bins: int,
    padded_window_size: int,
    sample_rate: float,
    low_freq: float,
    high_freq: float,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """Kaldi's triangular mel filterbank `[num_mel_bins, padded_window_size // 2 + 1]`.

    Triangles are equally spaced on the mel scale between `low_freq` and `high_freq` (<= 0 means an
    offset from Nyquist), evaluated at the FFT bin centres; the Nyquist bin gets weight 0 as in Kaldi.
    Computed in float32 like Kaldi (BaseFloat), then cast and cached per (arguments, device, dtype);
    built outside inference mode so that the cached tensor can also serve autograd.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not (0.0 <= low_freq < nyquist and 0.0 < high_freq <= nyquist and low_freq < high_freq):
        raise ValueError(
            f"need 0 <= low_freq < high_freq <= Nyquist ({nyquist} Hz); got low_freq={low_freq}, "
            f"high_freq={high_freq}"
        )
    if num_mel_bins <= 3:
        raise ValueError(f"num_mel_bins must be greater than 3 (Kaldi's limit); got {num_mel_bins}")
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    mel_delta = (mel_high - mel_low) / (num_mel_bins + 1)
    fft_bin_width = sample_rate / padded_window_size
    with torch.inference_mode(False):
        bins = rearrange(torch.arange(num_mel_bins), "m -> m 1")
        left_mel = mel_low + bins * mel_delta
        center_mel = mel_low + (bins + 1.0) * mel_delta
        right_mel = mel_low + (bins + 2.0) * mel_delta
        fft_mel = rearrange(
            1127.0 * (1.0 + fft_bin_width * torch.arange(padded_window_size // 2) / 700.0).log(), "k -> 1 k"
        )
        up_slope = (fft_mel - left_mel) / (center_mel - left_mel)
        down_slope = (right_mel - fft_mel) / (right_mel - center_mel)
        banks = torch.clamp(torch.minimum(up_slope, down_slope), min=0.0)
        return F.pad(banks, (0, 1)).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=32)
def _window(window_type: str, window_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Kaldi's symmetric frame window `[window_size]` (povey = hann ** 0.85), made outside inference mode."""
    with torch.inference_mode(False):
        return _window_values(window_type, window_size, device, dtype)


def _window_values(window_type: str, window_size: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    if window_type == "hanning":
        return torch.hann_window(window_size, periodic=False, device=device, dtype=dtype)
    if window_type == "hamming":
        return torch.hamming_window(
            window_size, periodic=False, alpha=0.54, beta=0.46, device=device, dtype=dtype
        )
    if window_type == "povey":
        return torch.hann_window(window_size, periodic=False, device=device, dtype=dtype).pow(0.85)
    return torch.ones(window_size, device=device, dtype=dtype)


def _frames(waveform: Tensor, window_size: int, window_shift: int, snip_edges: bool) -> Tensor:
    """Cut `[B, T]` into frames `[B, frames, window_size]` (a strided view when `snip_edges`).

    Without `snip_edges` the signal is mirrored at both ends (Kaldi's [2, 1, 0, 0, 1, 2] reflection)
    and there are (T + shift // 2) // shift frames centred on multiples of the shift.
    """
    if not snip_edges:
        count = (waveform.shape[-1] + window_shift // 2) // window_shift
        pad = window_size // 2 - window_shift // 2
        reversed_waveform = waveform.flip(-1)
        if pad > 0:
            waveform = torch.cat((reversed_waveform[:, -pad:], waveform, reversed_waveform), dim=-1)
        else:
            waveform = torch.cat((waveform[:, -pad:], reversed_waveform), dim=-1)
        return waveform.unfold(-1, window_size, window_shift)[:, :count]
    return waveform.unfold(-1, window_size, window_shift)


def kaldi_fbank(
    waveform: Tensor,
    sample_rate: int = 16000,
    num_mel_bins: int = 128,
    frame_length: float = 25.0,
    frame_shift: float = 10.0,
    dither: float = 0.0,
    preemphasis_coefficient: float = 0.97,
    remove_dc_offset: bool = True,
    window_type: str = "povey",
    round_to_power_of_two: bool = True,
    snip_edges: bool = True,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    use_log_fbank: bool = True,
    use_power: bool = True,
    use_energy: bool = False,
) -> Tensor:
    """Kaldi log-mel filterbank of a batch: `[B, T]` -> `[B, frames, num_mel_bins (+1 if use_energy)]`.

    Matches `torchaudio.compliance.kaldi.fbank` applied row by row with the same arguments (other
    torchaudio arguments at their defaults). Float16/bfloat16 input is computed in float32 and cast
    back; the output otherwise keeps the input's dtype and device. `use_energy` prepends the raw log
    energy (before pre-emphasis, floored at 0 = log of Kaldi's default energy_floor 1.0).
    `dither` must be 0: this front-end is deterministic. All rows go through every op together; on
    CPU the frame axis is walked in blocks of about `_CPU_BLOCK_FRAMES` frames (over the whole batch)
    so that the intermediates stay in cache, elsewhere in a single pass.
    """
    if dither != 0.0:
        raise NotImplementedError(
            f"dither={dither} is not supported: kaldi_fbank is deterministic; pass dither=0.0 and add noise "
            "to the waveform beforehand if you need it"
        )
    if waveform.dim() != 2:
        raise ValueError(
            f"waveform must be [B, T]; got shape {tuple(waveform.shape)} (use x[None] for one clip)"
        )
    if not waveform.is_floating_point():
        raise TypeError(f"waveform must be floating point; got {waveform.dtype} (convert with .float())")
    if window_type not in WINDOW_TYPES:
        raise ValueError(f"window_type={window_type!r} is not supported; choose one of {WINDOW_TYPES}")
    if not 0.0 <= preemphasis_coefficient <= 1.0:
        raise ValueError(f"preemphasis_coefficient must be in [0, 1]; got {preemphasis_coefficient}")
    window_size = _window_samples(sample_rate, frame_length)
    window_shift = _window_samples(sample_rate, frame_shift)
    padded_window_size = 1 << (window_size - 1).bit_length() if round_to_power_of_two else window_size
    if window_shift <= 0 or window_size < 2 or padded_window_size % 2:
        raise ValueError(
            f"frame_length={frame_length} ms and frame_shift={frame_shift} ms at {sample_rate} Hz give "
            f"window {window_size} and shift {window_shift} samples; need window >= 2, shift >= 1 and an "
            "even FFT size (set round_to_power_of_two=True or change frame_length)"
        )
    if waveform.shape[-1] < window_size:
        raise ValueError(
            f"waveform has {waveform.shape[-1]} samples, fewer than one {frame_length} ms frame "
            f"({window_size} samples at {sample_rate} Hz); pad or crop the clips first"
        )

    output_dtype = waveform.dtype
    if output_dtype in _LOW_PRECISION:
        waveform = waveform.float()
    device, dtype = waveform.device, waveform.dtype
    window = _window(window_type, window_size, device, dtype)
    banks = _mel_banks(
        num_mel_bins, padded_window_size, float(sample_rate), low_freq, high_freq, device, dtype
    )
    frames = _frames(waveform, window_size, window_shift, snip_edges)
    batch_size, frame_count = frames.shape[:2]
    block = _CPU_BLOCK_FRAMES // max(batch_size, 1) if device.type == "cpu" else frame_count
    fbank = [
        _frames_to_fbank(
            frames_block,
            window,
            banks,
            padded_window_size,
            remove_dc_offset,
            preemphasis_coefficient,
            use_power,
            use_log_fbank,
            use_energy,
        )
        for frames_block in frames.split(max(block, 1), dim=1)
    ]
    return torch.cat(fbank, dim=1).to(output_dtype)


def _frames_to_fbank(
    frames: Tensor,
    window: Tensor,
    banks: Tensor,
    padded_window_size: int,
    remove_dc_offset: bool,
    preemphasis_coefficient: float,
    use_power: bool,
    use_log_fbank: bool,
    use_energy: bool,
) -> Tensor:
    """Kaldi's per-frame pipeline on frames `[B, n, window]` -> `[B, n, mels (+1 if use_energy)]`."""
    if remove_dc_offset:
        frames = frames - frames.mean(dim=-1, keepdim=True)
    if use_energy:
        log_energy = frames.square().sum(dim=-1).clamp(min=_FLOAT32_EPS).log().clamp(min=0.0)
    if preemphasis_coefficient != 0.0:
        previous = torch.cat((frames[..., :1], frames[..., :-1]), dim=-1)
        frames = frames - preemphasis_coefficient * previous
    spectrum = torch.fft.rfft(frames * window, n=padded_window_size).abs()
    if use_power:
        spectrum = spectrum.pow(2.0)
    mel_energies = spectrum @ banks.T
    if use_log_fbank:
        mel_energies = mel_energies.clamp(min=_FLOAT32_EPS).log()
    if use_energy:
        mel_energies = torch.cat((rearrange(log_energy, "b n -> b n 1"), mel_energies), dim=-1)
    return mel_energies


class KaldiFbank(torch.nn.Module):
    """BEATs/AST front-end: `[B, T]` waveform in [-1, 1] -> normalised log-mel `[B, frames, num_mel_bins]`.

    Scales the waveform to int16 range (x 32768), computes `kaldi_fbank` (povey window, 512-point FFT,
    no dither) and, when `normalize`, applies `normalize_fbank(mean, std)`.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        num_mel_bins: int = 128,
        frame_length: float = 25.0,
        frame_shift: float = 10.0,
        waveform_scale: float = 32768.0,
        mean: float = BEATS_FBANK_MEAN,
        std: float = BEATS_FBANK_STD,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.num_mel_bins = num_mel_bins
        self.frame_length = frame_length
        self.frame_shift = frame_shift
        self.waveform_scale = waveform_scale
        self.mean = mean
        self.std = std
        self.normalize = normalize

    def forward(self, waveform: Tensor) -> Tensor:
        """`[B, T]` -> `[B, frames, num_mel_bins]`."""
        fbank = kaldi_fbank(
            waveform * self.waveform_scale,
            sample_rate=self.sample_rate,
            num_mel_bins=self.num_mel_bins,
            frame_length=self.frame_length,
            frame_shift=self.frame_shift,
        )
        if self.normalize:
            fbank = normalize_fbank(fbank, self.mean, self.std)
        return fbank

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, num_mel_bins={self.num_mel_bins}, "
            f"frame_length={self.frame_length}, frame_shift={self.frame_shift}, normalize={self.normalize}"
        )
