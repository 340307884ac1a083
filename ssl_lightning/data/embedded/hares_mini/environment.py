"""Environment domain of hares-mini: ten procedurally synthesised sound events and multi-label scenes.

The events stand in for ESC-50/AudioSet-style environmental sounds. Each class has its own spectral
and temporal signature (tonal sweeps, beep trains, harmonic hum, noise textures, impulse trains),
and every draw varies timing, pitch, timbre and the added noise, so the classes are learnable but not
trivial. A scene mixes one to three events at random times over a noise bed (AudioSet-like tagging).

Every generator is `(rng, ..., sample_rate, num_samples) -> float32 [num_samples]` in [-1, 1]. The
small DSP helpers at the top (`colored_noise`, `band_noise`, `finish_clip`, ...) are shared with
`music.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from einops import rearrange

from ssl_lightning.data.embedded.hares_mini.synth import (
    band_noise,
    colored_noise,
    fade,
    finish_clip,
    lowpass,
    peak_normalise,
    place_grains,
    random_onsets,
    rms,
    smooth_random_curve,
    unit_rms,
)

EVENT_CLASSES: tuple[str, ...] = (
    "siren",
    "alarm_beeps",
    "engine_hum",
    "rain",
    "footsteps",
    "bell",
    "wind",
    "clapping",
    "whistle",
    "dripping",
)

# --- event synthesisers: (rng, sample_rate, num_samples) -> raw waveform [num_samples] ------------


def _time(sample_rate: int, num_samples: int) -> np.ndarray:
    return np.arange(num_samples) / sample_rate


def _siren(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Wail/yelp: a few harmonics of a tone whose frequency sweeps sinusoidally."""
    t = _time(sample_rate, num_samples)
    centre = rng.uniform(600.0, 1100.0)
    sweep = (
        centre
        * rng.uniform(0.2, 0.4)
        * np.sin(2 * np.pi * rng.uniform(0.4, 3.0) * t + rng.uniform(0, 2 * np.pi))
    )
    phase = 2 * np.pi * np.cumsum(centre + sweep) / sample_rate
    harmonics = np.arange(1, 5)[:, None]
    audible = harmonics * np.max(centre + sweep) < 0.45 * sample_rate
    amplitudes = rng.uniform(0.2, 0.6) ** (harmonics - 1) * audible
    return np.sum(amplitudes * np.sin(harmonics * phase[None, :]), axis=0)


def _alarm_beeps(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Buzzer beeps: a gated square-ish tone, optionally alternating between two pitches."""
    t = _time(sample_rate, num_samples)
    period = rng.uniform(0.18, 0.4)
    on = period * rng.uniform(0.3, 0.6)
    cycle = (t + rng.uniform(0.0, period)) / period
    gate = ((cycle % 1.0) < on / period).astype(np.float64)
    gate = np.convolve(gate, np.hanning(int(0.004 * sample_rate) + 3), mode="same")
    base = rng.uniform(1800.0, 3200.0)
    second = base * rng.choice([1.0, 0.8, 1.25])
    frequency = np.where(cycle.astype(np.int64) % 2 == 0, base, second)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
    third = rng.uniform(0.1, 0.4) * (3.0 * max(base, second) < 0.45 * sample_rate)
    return gate * (np.sin(phase) + third * np.sin(3 * phase))


def _engine_hum(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Low sawtooth hum with drifting speed and firing-rate modulation, low-passed, plus rumble."""
    drift = smooth_random_curve(rng, num_samples, sample_rate, 0.5, 0.95, 1.05)
    fundamental = rng.uniform(25.0, 70.0) * drift
    cycles = np.cumsum(fundamental) / sample_rate
    saw = 2.0 * (cycles % 1.0) - 1.0
    firing = 1.0 + rng.uniform(0.1, 0.4) * np.sin(2 * np.pi * 0.5 * cycles)
    hum = lowpass(saw * firing, sample_rate, rng.uniform(300.0, 1200.0))
    return unit_rms(hum) + rng.uniform(0.2, 0.5) * colored_noise(rng, num_samples, 2.0)


def _rain(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Steady high-band hiss plus a dense crackle of tiny droplet clicks."""
    hiss = band_noise(rng, num_samples, sample_rate, rng.uniform(800.0, 2000.0), rng.uniform(5000.0, 8000.0))
    count = int(rng.uniform(60.0, 200.0) * num_samples / sample_rate)
    clicks = np.zeros(num_samples)
    clicks[rng.integers(0, num_samples, count)] = rng.uniform(-1.0, 1.0, count)
    decay = np.exp(-np.arange(int(0.003 * sample_rate) + 1) / (0.0005 * sample_rate))
    crackle = np.convolve(clicks, decay, mode="same")
    return hiss + rng.uniform(0.5, 1.5) * unit_rms(crackle)


def _footsteps(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """A walking rhythm of dull low-passed thuds, each with its own noise and loudness."""
    onsets = random_onsets(rng, num_samples, sample_rate, rng.uniform(0.35, 0.65), 0.08)
    length = int(0.15 * sample_rate)
    envelope = np.exp(-np.arange(length) / (rng.uniform(0.015, 0.04) * sample_rate))
    noise = lowpass(rng.standard_normal(onsets.shape[0] * length), sample_rate, rng.uniform(250.0, 900.0))
    thuds = rearrange(noise, "(k g) -> k g", g=length) * envelope
    return place_grains(num_samples, onsets, thuds * rng.uniform(0.6, 1.0, (onsets.shape[0], 1)))


def _bell(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Struck bell: inharmonic partials (hum, prime, minor third, fifth, ...) with long decays."""
    t = _time(sample_rate, num_samples)
    ratios = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.5, 3.0, 4.2]) * rng.uniform(0.99, 1.01, 8)
    frequencies = rng.uniform(300.0, 900.0) * ratios
    audible = frequencies < 0.45 * sample_rate
    decay_s = rng.uniform(0.8, 2.0) / ratios[audible] ** 0.7
    partials = np.sin(2 * np.pi * frequencies[audible, None] * t[None, :]) * np.exp(
        -t[None, :] / decay_s[:, None]
    )
    tone = np.sum(rng.uniform(0.3, 1.0, (int(audible.sum()), 1)) * partials, axis=0)
    strikes = np.sort(rng.uniform(0.0, 0.6 * num_samples, rng.integers(1, 4))).astype(np.int64)
    return place_grains(num_samples, strikes, tone)


def _wind(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Low rumbling noise shaped by slow gusts, with a faint resonant howl."""
    gusts = smooth_random_curve(rng, num_samples, sample_rate, rng.uniform(0.25, 0.6), 0.15, 1.0)
    rumble = lowpass(colored_noise(rng, num_samples, 1.5), sample_rate, rng.uniform(400.0, 1200.0))
    centre = rng.uniform(300.0, 900.0)
    howl = band_noise(rng, num_samples, sample_rate, centre * 0.9, centre * 1.1)
    return gusts * (unit_rms(rumble) + rng.uniform(0.1, 0.4) * howl)


def _clapping(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Hand claps: irregular train of short, sharply decaying mid-band noise bursts."""
    onsets = random_onsets(rng, num_samples, sample_rate, rng.uniform(0.12, 0.3), 0.2)
    length = int(0.05 * sample_rate)
    envelope = np.exp(-np.arange(length) / (rng.uniform(0.004, 0.01) * sample_rate))
    low, high = rng.uniform(700.0, 1200.0), rng.uniform(3000.0, 6000.0)
    noise = band_noise(rng, max(onsets.shape[0], 1) * length, sample_rate, low, high)
    claps = rearrange(noise, "(k g) -> k g", g=length)[: onsets.shape[0]]
    return place_grains(num_samples, onsets, claps * envelope * rng.uniform(0.5, 1.0, (onsets.shape[0], 1)))


def _whistle(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Human whistle: one to three gliding near-sine notes with vibrato and a little breath noise."""
    t = _time(sample_rate, num_samples)
    num_notes = int(rng.integers(1, 4))
    bounds = np.sort(rng.uniform(0.0, 1.0, 2 * num_notes)) * num_samples
    note = np.searchsorted(bounds, np.arange(num_samples), side="right")
    sounding = (note % 2 == 1).astype(np.float64)
    index = np.clip(note // 2, 0, num_notes - 1)
    start, end = rng.uniform(1000.0, 2800.0, num_notes), rng.uniform(1000.0, 2800.0, num_notes)
    progress = (np.arange(num_samples) - bounds[2 * index]) / (
        bounds[2 * index + 1] - bounds[2 * index] + 1.0
    )
    glide = start[index] + (end[index] - start[index]) * np.clip(progress, 0.0, 1.0)
    vibrato = 1.0 + rng.uniform(0.005, 0.02) * np.sin(2 * np.pi * rng.uniform(4.5, 7.0) * t)
    phase = 2 * np.pi * np.cumsum(glide * vibrato) / sample_rate
    envelope = np.convolve(sounding, np.hanning(int(0.03 * sample_rate) + 3), mode="same")
    breath = band_noise(rng, num_samples, sample_rate, 2000.0, 7000.0)
    return envelope * (np.sin(phase) + rng.uniform(0.02, 0.08) * breath)


def _dripping(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Water drops: sparse, irregular 'plinks' (short upward chirps with fast decay)."""
    onsets = random_onsets(rng, num_samples, sample_rate, rng.uniform(0.2, 0.5), 0.6)
    t = np.arange(int(0.08 * sample_rate)) / sample_rate
    start = rng.uniform(500.0, 1200.0, (onsets.shape[0], 1))
    rise = rng.uniform(1.5, 3.0, (onsets.shape[0], 1))
    sweep_s = rng.uniform(0.015, 0.04)
    frequency = start * (1.0 + (rise - 1.0) * np.clip(t / sweep_s, 0.0, 1.0))
    phase = 2 * np.pi * np.cumsum(frequency, axis=1) / sample_rate
    envelope = np.exp(-t / rng.uniform(0.01, 0.03))
    return place_grains(
        num_samples, onsets, np.sin(phase) * envelope * rng.uniform(0.4, 1.0, (onsets.shape[0], 1))
    )


_SYNTHS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "siren": _siren,
    "alarm_beeps": _alarm_beeps,
    "engine_hum": _engine_hum,
    "rain": _rain,
    "footsteps": _footsteps,
    "bell": _bell,
    "wind": _wind,
    "clapping": _clapping,
    "whistle": _whistle,
    "dripping": _dripping,
}


def _check_label(label: str) -> None:
    if label not in _SYNTHS:
        raise ValueError(
            f"unknown environment event class {label!r}; valid classes: {', '.join(EVENT_CLASSES)}"
        )


# --- public generators --------------------------------------------------------------------------


def event_clip(rng: np.random.Generator, label: str, sample_rate: int, num_samples: int) -> np.ndarray:
    """One sound event of class `label` filling the clip, with background noise at 0-20 dB SNR.

    Returns:
        float32 [num_samples] in [-1, 1], peak-normalised with a random gain.
    """
    _check_label(label)
    event = fade(_SYNTHS[label](rng, sample_rate, num_samples), int(0.005 * sample_rate))
    return finish_clip(rng, event, snr_db=(0.0, 20.0))


def scene_clip(
    rng: np.random.Generator, labels: Sequence[str], sample_rate: int, num_samples: int
) -> np.ndarray:
    """A scene: each event of `labels` (1-3 distinct classes) lasts 40-100 % of the clip, starts at a
    random time and enters at a random level (0 to -6 dB); all over a coloured-noise bed 6-20 dB below.

    Returns:
        float32 [num_samples] in [-1, 1], peak-normalised with a random gain.
    """
    if not 1 <= len(labels) <= len(EVENT_CLASSES) or len(set(labels)) != len(labels):
        raise ValueError(f"scene labels must be distinct event classes, got {list(labels)}")
    mixture = np.zeros(num_samples)
    for label in labels:
        _check_label(label)
        length = int(rng.uniform(0.4, 1.0) * num_samples)
        start = int(rng.integers(0, num_samples - length + 1))
        event = fade(_SYNTHS[label](rng, sample_rate, length), int(0.02 * sample_rate))
        mixture[start : start + length] += unit_rms(event) * 10.0 ** (-rng.uniform(0.0, 6.0) / 20.0)
    bed = (
        colored_noise(rng, num_samples, rng.uniform(0.5, 2.0))
        * rms(mixture)
        * 10.0 ** (-rng.uniform(6.0, 20.0) / 20.0)
    )
    return peak_normalise(rng, mixture + bed)
