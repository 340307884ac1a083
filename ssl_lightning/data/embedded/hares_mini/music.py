"""Music domain of hares-mini: single synthesised notes, an NSynth-like stand-in (pitch and instrument).

Eight instrument families, each a classic synthesis technique with its own timbre and envelope:
additive organ, FM electric piano, Karplus-Strong plucked string, bowed sawtooth string, odd-harmonic
reed, breathy flute, inharmonic mallet and brightness-swept brass. A note draws its velocity, detune
(within +-15 cents, so the pitch label stays unambiguous), onset, hold time, ADSR times and timbre
parameters at random, and gets a little background noise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from einops import rearrange

from ssl_lightning.data.embedded.hares_mini.synth import band_noise, finish_clip

INSTRUMENT_FAMILIES: tuple[str, ...] = (
    "organ",
    "keyboard",
    "guitar",
    "string",
    "reed",
    "flute",
    "mallet",
    "brass",
)
PITCH_CLASSES: tuple[int, ...] = tuple(range(48, 72))
"""MIDI note numbers C3 (130.8 Hz) to B4 (493.9 Hz): two octaves, 24 semitone classes."""

_TABLE_SIZE = 4096


def midi_to_hz(pitch: float) -> float:
    """Frequency in Hz of a (fractional) MIDI note number, A4 = 69 = 440 Hz."""
    return 440.0 * 2.0 ** ((pitch - 69.0) / 12.0)


def adsr(
    sample_rate: int,
    num_samples: int,
    attack_s: float,
    decay_s: float,
    sustain: float,
    hold_s: float,
    release_s: float,
) -> np.ndarray:
    """Attack-decay-sustain-release envelope [num_samples]: linear attack to 1, exponential decay
    towards `sustain` while the key is held for `hold_s`, then exponential release."""
    t = np.arange(num_samples) / sample_rate
    held = np.minimum(t, hold_s)
    level = np.where(
        held < attack_s,
        held / attack_s,
        sustain + (1.0 - sustain) * np.exp(-np.maximum(held - attack_s, 0.0) / decay_s),
    )
    return level * np.exp(-np.maximum(t - hold_s, 0.0) / release_s)


def harmonic_tone(phase: np.ndarray, amplitudes: np.ndarray, max_hz: float, sample_rate: int) -> np.ndarray:
    """Wavetable synthesis of sum_k amplitudes[k-1] * sin(k * phase) over harmonics k = 1..K.

    One period is built exactly with an inverse FFT, then read at the running phase with linear
    interpolation: the cost is O(T) whatever the number of harmonics.

    Args:
        phase: [T] running phase (radians) of the fundamental.
        amplitudes: [K] harmonic amplitudes; harmonics whose frequency (k * `max_hz`) would exceed
            0.45 * sample_rate are dropped to avoid aliasing.
    Returns:
        [T] waveform.
    """
    harmonics = np.arange(1, amplitudes.shape[0] + 1)
    spectrum = np.zeros(_TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[harmonics] = np.where(
        harmonics * max_hz < 0.45 * sample_rate, -0.5j * _TABLE_SIZE * amplitudes, 0.0
    )
    table = np.fft.irfft(spectrum, _TABLE_SIZE)
    position = np.mod(phase / (2 * np.pi), 1.0) * _TABLE_SIZE
    return np.interp(position, np.arange(_TABLE_SIZE + 1), np.append(table, table[0]))


def karplus_strong(
    rng: np.random.Generator,
    frequency: float,
    sample_rate: int,
    num_samples: int,
    brightness: float,
    loss: float,
) -> np.ndarray:
    """Plucked string by Karplus-Strong: a noise burst circulates in a delay line of N samples and is
    averaged over two neighbours (a half-sample delay) and damped each round trip, so it sounds at
    sr / (N + 0.5); N is the largest period at or below the wanted one, and linear-interpolation
    resampling then lowers the pitch to exactly `frequency`. Vectorised one period at a time.

    Args:
        brightness: in (0, 1]; the excitation is smoothed over about 1/brightness samples.
        loss: per-period amplitude factor (< 1) on top of the two-point average.
    Returns:
        [num_samples] waveform.
    """
    period = int(sample_rate / frequency - 0.5)
    stretch = frequency * (period + 0.5) / sample_rate
    length = int(np.ceil(num_samples * stretch)) + 2
    num_periods = -(-length // period) + 1
    width = max(1, int(round(1.0 / brightness)))
    excitation = np.convolve(rng.uniform(-1.0, 1.0, period + width - 1), np.ones(width) / width, mode="valid")
    line = np.zeros((num_periods, period))
    line[0] = excitation - excitation.mean()
    for k in range(1, num_periods):
        previous = np.concatenate([line[k - 2, -1:] if k > 1 else np.zeros(1), line[k - 1, :-1]])
        line[k] = loss * 0.5 * (line[k - 1] + previous)
    string = rearrange(line, "p n -> (p n)")
    return np.interp(np.arange(num_samples) * stretch, np.arange(string.shape[0]), string)


# --- family synthesisers: (rng, note) -> waveform [note.num_samples] ------------------------------


@dataclass(frozen=True)
class _Note:
    """What every family synthesiser plays: fundamental (Hz), velocity in (0, 1], key-held time."""

    frequency: float
    velocity: float
    hold_s: float
    sample_rate: int
    num_samples: int

    @property
    def time(self) -> np.ndarray:
        """[num_samples] sample times in seconds."""
        return np.arange(self.num_samples) / self.sample_rate

    def envelope(self, attack_s: float, decay_s: float, sustain: float, release_s: float) -> np.ndarray:
        """ADSR envelope [num_samples] of this note (see `adsr`)."""
        return adsr(self.sample_rate, self.num_samples, attack_s, decay_s, sustain, self.hold_s, release_s)

    def harmonics(self, amplitudes: np.ndarray, frequency: np.ndarray | None = None) -> np.ndarray:
        """Harmonic tone [num_samples] (see `harmonic_tone`) on the instantaneous fundamental
        `frequency` [num_samples] (default: the note's constant frequency)."""
        frequency = np.full(self.num_samples, self.frequency) if frequency is None else frequency
        phase = 2 * np.pi * np.cumsum(frequency) / self.sample_rate
        return harmonic_tone(phase, amplitudes, float(np.max(frequency)), self.sample_rate)


def _vibrato(rng: np.random.Generator, note: _Note, depth: float) -> np.ndarray:
    """Instantaneous frequency [T]: the note's fundamental with 4.5-6.5 Hz vibrato of relative `depth`,
    faded in after 0.1-0.3 s."""
    t = note.time
    onset = np.clip((t - rng.uniform(0.1, 0.3)) / 0.2, 0.0, 1.0)
    return note.frequency * (1.0 + depth * onset * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t))


def _organ(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Drawbar organ: random drawbar levels on the footages 8', 4', 2 2/3', 2', 1 3/5', 1 1/3', 1'
    (harmonics 1, 2, 3, 4, 5, 6, 8), on/off envelope, tremolo."""
    drawbars = rng.uniform(0.0, 1.0, 8) * (rng.uniform(size=8) < 0.7) * (np.arange(1, 9) != 7)
    drawbars[0] = rng.uniform(0.6, 1.0)
    tremolo = 1.0 + rng.uniform(0.0, 0.15) * np.sin(2 * np.pi * rng.uniform(5.0, 7.0) * note.time)
    envelope = note.envelope(rng.uniform(0.005, 0.02), 0.1, 1.0, rng.uniform(0.03, 0.08))
    return note.harmonics(drawbars) * tremolo * envelope


def _keyboard(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """FM electric piano: carrier at f, modulator at an integer ratio (1-3) times f, so the partials stay
    harmonic (the pitch stays f), with a modulation index that decays in time."""
    t = note.time
    ratio = rng.choice([1.0, 2.0, 3.0])
    index = rng.uniform(1.0, 4.0) * note.velocity * np.exp(-t / rng.uniform(0.1, 0.5))
    tone = np.sin(2 * np.pi * note.frequency * t + index * np.sin(2 * np.pi * ratio * note.frequency * t))
    return tone * note.envelope(rng.uniform(0.002, 0.006), rng.uniform(0.4, 1.2), 0.0, 0.1)


def _guitar(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Plucked string (Karplus-Strong); brighter when plucked harder."""
    brightness = rng.uniform(0.3, 1.0) * note.velocity
    string = karplus_strong(
        rng, note.frequency, note.sample_rate, note.num_samples, brightness, rng.uniform(0.99, 0.999)
    )
    return string * note.envelope(0.001, 1.0, 1.0, rng.uniform(0.05, 0.15))


def _string(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Bowed string: band-limited sawtooth with a soft roll-off, delayed vibrato and a slow attack."""
    harmonics = np.arange(1.0, 31.0)
    amplitudes = np.exp(-harmonics / rng.uniform(4.0, 12.0)) / harmonics
    tone = note.harmonics(amplitudes, _vibrato(rng, note, rng.uniform(0.003, 0.006)))
    return tone * note.envelope(rng.uniform(0.08, 0.2), 0.3, rng.uniform(0.8, 1.0), rng.uniform(0.1, 0.3))


def _reed(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Clarinet-like reed: strong odd harmonics, weak even ones (square-ish), quick attack."""
    harmonics = np.arange(1.0, 25.0)
    even_level = rng.uniform(0.05, 0.2)
    amplitudes = (
        np.where(harmonics % 2 == 1, 1.0, even_level)
        / harmonics
        * np.exp(-harmonics / rng.uniform(6.0, 16.0))
    )
    return note.harmonics(amplitudes) * note.envelope(
        rng.uniform(0.02, 0.05), 0.2, rng.uniform(0.7, 0.95), rng.uniform(0.03, 0.1)
    )


def _flute(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Flute: nearly sinusoidal (weak 2nd/3rd harmonics) with vibrato and band-passed breath noise."""
    amplitudes = np.array([1.0, rng.uniform(0.1, 0.4), rng.uniform(0.02, 0.15), rng.uniform(0.0, 0.05)])
    tone = note.harmonics(amplitudes, _vibrato(rng, note, rng.uniform(0.005, 0.01)))
    breath = band_noise(rng, note.num_samples, note.sample_rate, note.frequency, 6.0 * note.frequency)
    envelope = note.envelope(rng.uniform(0.05, 0.1), 0.2, rng.uniform(0.8, 1.0), rng.uniform(0.05, 0.12))
    return (tone + rng.uniform(0.05, 0.15) * breath) * envelope


def _mallet(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Marimba/vibraphone bar: inharmonic partials (1 : 3.9 : 9.2) decaying faster the higher they are,
    plus a short strike click; the key-held time does not matter."""
    t = note.time
    ratios = np.array([1.0, 3.9, 9.2]) * rng.uniform(0.98, 1.02, 3)
    decay_s = rng.uniform(0.3, 0.9) / ratios
    levels = np.array([1.0, rng.uniform(0.2, 0.6) * note.velocity, rng.uniform(0.05, 0.3) * note.velocity])
    partials = np.sin(2 * np.pi * note.frequency * ratios[:, None] * t[None, :]) * np.exp(
        -t[None, :] / decay_s[:, None]
    )
    tone = np.sum(
        levels[:, None] * partials * (note.frequency * ratios[:, None] < 0.45 * note.sample_rate), axis=0
    )
    click = band_noise(rng, note.num_samples, note.sample_rate, 1000.0, 5000.0) * np.exp(-t / 0.003)
    return tone + rng.uniform(0.05, 0.2) * click


def _brass(rng: np.random.Generator, note: _Note) -> np.ndarray:
    """Brass: sawtooth partials that brighten with loudness (a crossfade from a dark to a bright
    spectrum following velocity * envelope), with a pitch scoop during the attack."""
    attack_s = rng.uniform(0.03, 0.08)
    envelope = note.envelope(attack_s, 0.15, rng.uniform(0.6, 0.9), rng.uniform(0.05, 0.12))
    scoop = 2.0 ** (-rng.uniform(0.2, 0.5) / 12.0 * np.clip(1.0 - note.time / attack_s, 0.0, 1.0))
    harmonics = np.arange(1.0, 21.0)
    dark = note.harmonics(np.exp(-harmonics / 1.5) / harmonics, note.frequency * scoop)
    bright = note.harmonics(np.exp(-harmonics / rng.uniform(6.0, 12.0)) / harmonics, note.frequency * scoop)
    blend = note.velocity * envelope
    return ((1.0 - blend) * dark + blend * bright) * envelope


_SYNTHS: dict[str, Callable[[np.random.Generator, _Note], np.ndarray]] = {
    "organ": _organ,
    "keyboard": _keyboard,
    "guitar": _guitar,
    "string": _string,
    "reed": _reed,
    "flute": _flute,
    "mallet": _mallet,
    "brass": _brass,
}


def note_clip(
    rng: np.random.Generator, pitch: int, family: str, sample_rate: int, num_samples: int
) -> np.ndarray:
    """One note of MIDI `pitch` played by instrument `family`.

    The note starts within the first 50 ms, is held for 40-80 % of the clip, has a random velocity in
    [0.3, 1] and detune in [-15, 15] cents, and gets background noise at 20-40 dB SNR.

    Returns:
        float32 [num_samples] in [-1, 1], peak-normalised with a random gain.
    """
    if family not in _SYNTHS:
        raise ValueError(
            f"unknown instrument family {family!r}; valid families: {', '.join(INSTRUMENT_FAMILIES)}"
        )
    if not 0 <= pitch <= 127:
        raise ValueError(f"pitch must be a MIDI note number in [0, 127], got {pitch}")
    frequency = midi_to_hz(pitch + rng.uniform(-0.15, 0.15))
    onset = int(rng.uniform(0.0, 0.05) * sample_rate)
    hold_s = rng.uniform(0.4, 0.8) * num_samples / sample_rate
    note = _Note(frequency, rng.uniform(0.3, 1.0), hold_s, sample_rate, num_samples - onset)
    return finish_clip(
        rng, np.concatenate([np.zeros(onset), _SYNTHS[family](rng, note)]), snr_db=(20.0, 40.0)
    )
