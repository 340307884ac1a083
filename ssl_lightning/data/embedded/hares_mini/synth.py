"""Signal helpers shared by the hares-mini generators: shaped noise, filters, levels, grains."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_EPS = 1e-8


def rms(x: np.ndarray) -> float:
    """Root mean square of a waveform [T]."""
    return float(np.sqrt(np.mean(np.square(x))))


def unit_rms(x: np.ndarray) -> np.ndarray:
    """A waveform [T] scaled to RMS 1 (left as is when silent)."""
    return x / max(rms(x), _EPS)


def _shaped_noise(
    rng: np.random.Generator, num_samples: int, gains: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Gaussian noise [num_samples] whose amplitude spectrum is `gains(normalised frequency in [0, 0.5])`."""
    bins = num_samples // 2 + 1
    spectrum = rng.standard_normal(bins) + 1j * rng.standard_normal(bins)
    noise = np.fft.irfft(spectrum * gains(np.fft.rfftfreq(num_samples)), num_samples)
    return unit_rms(noise)


def colored_noise(rng: np.random.Generator, num_samples: int, exponent: float) -> np.ndarray:
    """Unit-RMS noise [num_samples] with power spectrum ~ 1/f^exponent (0 white, 1 pink, 2 brown)."""
    return _shaped_noise(rng, num_samples, lambda f: np.maximum(f, 1.0 / num_samples) ** (-exponent / 2))


def band_noise(
    rng: np.random.Generator, num_samples: int, sample_rate: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """Unit-RMS noise [num_samples] band-limited to [low_hz, high_hz] with smooth (Gaussian) band edges."""
    low, high = low_hz / sample_rate, min(high_hz, 0.49 * sample_rate) / sample_rate
    width = 0.1 * (high - low) + 1e-4

    def gains(f: np.ndarray) -> np.ndarray:
        below = np.exp(-0.5 * ((f - low) / width) ** 2) * (f < low)
        above = np.exp(-0.5 * ((f - high) / width) ** 2) * (f > high)
        return below + above + ((f >= low) & (f <= high))

    return _shaped_noise(rng, num_samples, gains)


def lowpass(x: np.ndarray, sample_rate: int, cutoff_hz: float) -> np.ndarray:
    """Zero-phase low-pass of a waveform [T] with a Gaussian roll-off above `cutoff_hz` (FFT filter)."""
    freqs = np.fft.rfftfreq(x.shape[0], d=1.0 / sample_rate)
    gains = np.exp(-0.5 * np.maximum(freqs - cutoff_hz, 0.0) ** 2 / (0.25 * cutoff_hz) ** 2)
    return np.fft.irfft(np.fft.rfft(x) * gains, x.shape[0])


def fade(x: np.ndarray, num_fade: int) -> np.ndarray:
    """A waveform [T] with raised-cosine fade-in and fade-out of `num_fade` samples each."""
    num_fade = min(num_fade, x.shape[0] // 2)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, num_fade))
    gain = np.ones_like(x)
    gain[:num_fade] = ramp
    gain[x.shape[0] - num_fade :] = ramp[::-1]
    return x * gain


def smooth_random_curve(
    rng: np.random.Generator, num_samples: int, sample_rate: int, period_s: float, low: float, high: float
) -> np.ndarray:
    """Slowly varying curve [num_samples] in [low, high]: random control points every `period_s`,
    joined by cosine interpolation (gusts, drifts)."""
    num_points = int(num_samples / (period_s * sample_rate)) + 2
    points = rng.uniform(low, high, num_points)
    position = np.arange(num_samples) / (period_s * sample_rate)
    left = position.astype(np.int64)
    weight = 0.5 - 0.5 * np.cos(np.pi * (position - left))
    return points[left] * (1.0 - weight) + points[left + 1] * weight


def random_onsets(
    rng: np.random.Generator, num_samples: int, sample_rate: int, interval_s: float, jitter: float
) -> np.ndarray:
    """Sample positions [K] of a quasi-periodic event train: mean interval `interval_s`, each interval
    scaled by a uniform factor in [1 - jitter, 1 + jitter]; the first onset lies in the first interval
    (or the first half of the clip), so there is always at least one."""
    duration_s = num_samples / sample_rate
    count = int(duration_s / (interval_s * (1.0 - jitter))) + 2
    intervals = interval_s * rng.uniform(1.0 - jitter, 1.0 + jitter, count)
    times = rng.uniform(0.0, min(interval_s, 0.5 * duration_s)) + np.concatenate(
        [[0.0], np.cumsum(intervals[:-1])]
    )
    return (times[times < duration_s] * sample_rate).astype(np.int64)


def place_grains(num_samples: int, onsets: np.ndarray, grains: np.ndarray) -> np.ndarray:
    """Sum of grains [K, G] (or one grain [G] repeated) starting at sample positions onsets [K],
    truncated at `num_samples`; returns [num_samples]."""
    grains = np.broadcast_to(grains, (onsets.shape[0], grains.shape[-1]))
    index = onsets[:, None] + np.arange(grains.shape[1])[None, :]
    inside = index < num_samples
    out = np.zeros(num_samples)
    np.add.at(out, index[inside], grains[inside])
    return out


def peak_normalise(
    rng: np.random.Generator, x: np.ndarray, gain_range: tuple[float, float] = (0.3, 0.95)
) -> np.ndarray:
    """float32 waveform [T] scaled so that its peak is a random gain drawn from `gain_range`."""
    peak = float(np.max(np.abs(x))) + _EPS
    return (x * (rng.uniform(*gain_range) / peak)).astype(np.float32)


def finish_clip(rng: np.random.Generator, x: np.ndarray, snr_db: tuple[float, float]) -> np.ndarray:
    """Add coloured noise (random spectral slope) at a random SNR in `snr_db` to a waveform [T], then
    peak-normalise with a random gain; returns float32 [T] in [-1, 1]."""
    snr = rng.uniform(*snr_db)
    noise = colored_noise(rng, x.shape[0], rng.uniform(0.0, 2.0)) * 10.0 ** (-snr / 20.0)
    return peak_normalise(rng, unit_rms(x) + noise)
