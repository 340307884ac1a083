"""Tests for the hares-mini environment and music generators: format, determinism, known answers,
and that every class is separable by a crude spectral feature (the tasks are not degenerate)."""

import numpy as np
import pytest
from einops import rearrange
from sklearn.linear_model import LogisticRegression

from ssl_lightning.data.embedded.hares_mini import environment, music, synth

SR = 16000


def spectral_centroid(x: np.ndarray) -> float:
    magnitude = np.abs(np.fft.rfft(x))
    return float(np.sum(magnitude * np.fft.rfftfreq(x.shape[0], 1.0 / SR)) / np.sum(magnitude))


def frame_features(x: np.ndarray, bands: int = 32, frame: int = 512) -> np.ndarray:
    """[2 * bands] crude clip feature: mean and std over 32 ms frames of log energies in log-spaced
    bands between 60 Hz and 7.5 kHz."""
    frames = rearrange(x[: x.size // frame * frame], "(n f) -> n f", f=frame) * np.hanning(frame)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(frame, 1.0 / SR)
    edges = np.geomspace(60.0, 7500.0, bands + 1)
    inside = (freqs >= edges[0]) & (freqs < edges[-1])
    band_of_bin = np.eye(bands)[np.searchsorted(edges, freqs[inside]) - 1]
    log_bands = np.log(power[:, inside] @ band_of_bin + 1e-9)
    return np.concatenate([log_bands.mean(0), log_bands.std(0)])


def heldout_accuracy(features: dict[str, np.ndarray], num_train: int) -> float:
    """Accuracy of a logistic regression (standardised features) trained on the first `num_train`
    clips of each class and tested on the others."""
    train = np.concatenate([f[:num_train] for f in features.values()])
    test = np.concatenate([f[num_train:] for f in features.values()])
    train_labels = np.repeat(np.arange(len(features)), [num_train for _ in features])
    test_labels = np.repeat(np.arange(len(features)), [f.shape[0] - num_train for f in features.values()])
    mean, std = train.mean(0), train.std(0) + 1e-6
    classifier = LogisticRegression(max_iter=2000, C=0.5).fit((train - mean) / std, train_labels)
    return classifier.score((test - mean) / std, test_labels)


def estimate_f0(x: np.ndarray, low_hz: float = 80.0, high_hz: float = 600.0) -> float:
    """f0 from the autocorrelation of 0.3 s after the attack: the first lag whose correlation reaches
    90 % of the best one (avoids octave-down errors), refined by parabolic interpolation."""
    segment = x[1600:6400].astype(np.float64) - x[1600:6400].mean()
    ac = np.fft.irfft(np.abs(np.fft.rfft(segment, 2 * segment.size)) ** 2)[: segment.size]
    low, high = int(SR / high_hz), int(SR / low_hz)
    window = ac[low:high]
    lag = low + int(np.flatnonzero(window >= 0.9 * window.max())[0])
    while ac[lag + 1] > ac[lag]:
        lag += 1
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    return SR / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def cents(f: float, reference: float) -> float:
    return 1200.0 * np.log2(f / reference)


# --- environment -------------------------------------------------------------------------------


@pytest.mark.parametrize("label", environment.EVENT_CLASSES)
def test_event_clip_format_and_determinism(label):
    first = environment.event_clip(np.random.default_rng(3), label, SR, SR)
    again = environment.event_clip(np.random.default_rng(3), label, SR, SR)
    other = environment.event_clip(np.random.default_rng(4), label, SR, SR)
    assert first.shape == (SR,) and first.dtype == np.float32
    assert 0.3 - 1e-6 <= np.abs(first).max() <= 0.95 + 1e-6  # peak-normalised with a random gain
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_event_clip_other_sample_rate_and_length():
    clip = environment.event_clip(np.random.default_rng(0), "siren", 8000, 12345)
    assert clip.shape == (12345,) and np.isfinite(clip).all()


def test_event_and_scene_reject_unknown_labels():
    with pytest.raises(ValueError, match="'laser'.*siren"):
        environment.event_clip(np.random.default_rng(0), "laser", SR, SR)
    with pytest.raises(ValueError, match="laser"):
        environment.scene_clip(np.random.default_rng(0), ["siren", "laser"], SR, SR)
    with pytest.raises(ValueError, match="distinct"):
        environment.scene_clip(np.random.default_rng(0), ["rain", "rain"], SR, SR)


def test_scene_clip_format_and_determinism():
    labels = ["siren", "footsteps", "rain"]
    first = environment.scene_clip(np.random.default_rng(1), labels, SR, 2 * SR)
    again = environment.scene_clip(np.random.default_rng(1), labels, SR, 2 * SR)
    assert first.shape == (2 * SR,) and first.dtype == np.float32 and np.abs(first).max() <= 1.0
    np.testing.assert_array_equal(first, again)


def test_scene_contains_its_events():
    """A siren scene has far more energy in the siren band (0.5-1.5 kHz fundamental) than a rain scene,
    whose hiss sits above 1 kHz; the two-event scene has both."""

    def band_share(x, low, high):
        power = np.abs(np.fft.rfft(x)) ** 2
        freqs = np.fft.rfftfreq(x.shape[0], 1.0 / SR)
        return power[(freqs >= low) & (freqs < high)].sum() / power.sum()

    siren = [environment.scene_clip(np.random.default_rng(s), ["siren"], SR, SR) for s in range(4)]
    rain = [environment.scene_clip(np.random.default_rng(s), ["rain"], SR, SR) for s in range(4)]
    assert min(band_share(x, 4000, 8000) for x in rain) > max(band_share(x, 4000, 8000) for x in siren)


def test_rain_is_brighter_than_engine_hum():
    """Worked example of a crude feature: the spectral centroid of rain (hiss above 1 kHz) is several
    times that of the engine hum (sawtooth below 1.2 kHz plus brown rumble)."""
    rain = np.mean(
        [
            spectral_centroid(environment.event_clip(np.random.default_rng(s), "rain", SR, SR))
            for s in range(5)
        ]
    )
    engine = np.mean(
        [
            spectral_centroid(environment.event_clip(np.random.default_rng(s), "engine_hum", SR, SR))
            for s in range(5)
        ]
    )
    assert rain > 2.0 * engine


def test_event_classes_are_separable_by_a_crude_feature():
    """A logistic regression on mean/std log band energies, trained on 13 clips per class, is far above
    chance (10 %) on 7 held-out clips per class (0.8 when written): no two classes collapse."""
    features = {
        label: np.stack(
            [
                frame_features(environment.event_clip(np.random.default_rng(s), label, SR, SR))
                for s in range(20)
            ]
        )
        for label in environment.EVENT_CLASSES
    }
    assert heldout_accuracy(features, num_train=13) >= 0.6


def test_random_onsets_always_give_an_event_and_stay_inside():
    for seed in range(20):
        onsets = synth.random_onsets(np.random.default_rng(seed), 4000, SR, interval_s=0.6, jitter=0.5)
        assert onsets.size >= 1 and onsets.min() >= 0 and onsets.max() < 4000


def test_place_grains_known_answer():
    out = synth.place_grains(6, np.array([0, 4]), np.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]))
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 0.0, 10.0, 20.0])


def test_colored_noise_slope():
    """Brown noise (exponent 2) puts far more power below 500 Hz than white noise (exponent 0)."""
    rng = np.random.default_rng(0)

    def low_share(x):
        power = np.abs(np.fft.rfft(x)) ** 2
        return power[np.fft.rfftfreq(x.shape[0], 1.0 / SR) < 500].sum() / power.sum()

    white, brown = synth.colored_noise(rng, SR, 0.0), synth.colored_noise(rng, SR, 2.0)
    assert abs(synth.rms(white) - 1.0) < 1e-6
    assert low_share(white) < 0.1 and low_share(brown) > 0.9


# --- music ---------------------------------------------------------------------------------------


def test_adsr_known_values():
    envelope = music.adsr(1000, 1000, attack_s=0.1, decay_s=0.01, sustain=0.5, hold_s=0.5, release_s=0.05)
    assert envelope[50] == pytest.approx(0.5)  # half-way up the linear attack
    assert envelope[100] == pytest.approx(1.0)  # peak at the end of the attack
    assert envelope[400] == pytest.approx(0.5, abs=1e-6)  # decayed to the sustain level
    assert envelope[550] == pytest.approx(0.5 * np.exp(-1.0), rel=1e-3)  # one release time constant


def test_harmonic_tone_matches_direct_additive_synthesis():
    phase = 2 * np.pi * 220.0 * np.arange(SR) / SR
    amplitudes = np.array([1.0, 0.5, 0.0, 0.25])
    expected = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(amplitudes))
    np.testing.assert_allclose(music.harmonic_tone(phase, amplitudes, 220.0, SR), expected, atol=2e-3)
    # harmonics above 0.45 * sample_rate are dropped (no aliasing): at 2 kHz only k = 1..3 remain
    phase = 2 * np.pi * 2000.0 * np.arange(SR) / SR
    tone = music.harmonic_tone(phase, np.ones(8), 2000.0, SR)
    np.testing.assert_allclose(tone, sum(np.sin(k * phase) for k in (1, 2, 3)), atol=2e-2)


@pytest.mark.parametrize("frequency", [130.81, 220.0, 493.88])
def test_karplus_strong_pitch_is_exact(frequency):
    string = music.karplus_strong(np.random.default_rng(0), frequency, SR, SR, brightness=1.0, loss=0.999)
    assert abs(cents(estimate_f0(string), frequency)) < 5.0


@pytest.mark.parametrize("family", music.INSTRUMENT_FAMILIES)
def test_note_clip_format_pitch_and_determinism(family):
    for pitch in (50, 69):
        note = music.note_clip(np.random.default_rng(pitch), pitch, family, SR, SR)
        assert note.shape == (SR,) and note.dtype == np.float32 and np.abs(note).max() <= 0.95 + 1e-6
        # detune is at most 15 cents; the estimator adds a few
        assert abs(cents(estimate_f0(note), music.midi_to_hz(pitch))) < 30.0, (family, pitch)
    np.testing.assert_array_equal(
        music.note_clip(np.random.default_rng(9), 60, family, SR, SR),
        music.note_clip(np.random.default_rng(9), 60, family, SR, SR),
    )


def test_note_clip_rejects_bad_family_and_pitch():
    with pytest.raises(ValueError, match="'banjo'.*organ"):
        music.note_clip(np.random.default_rng(0), 60, "banjo", SR, SR)
    with pytest.raises(ValueError, match="MIDI"):
        music.note_clip(np.random.default_rng(0), 128, "organ", SR, SR)


def test_instrument_families_are_separable_by_a_crude_feature():
    """The same crude probe over random pitches: far above chance (12.5 %) on held-out notes."""
    features = {}
    for family in music.INSTRUMENT_FAMILIES:
        rng = np.random.default_rng(1)
        clips = [
            music.note_clip(rng, int(rng.choice(music.PITCH_CLASSES)), family, SR, SR) for _ in range(20)
        ]
        features[family] = np.stack([frame_features(clip) for clip in clips])
    assert heldout_accuracy(features, num_train=13) >= 0.5


def test_pitch_classes_are_two_octaves_of_semitones():
    assert music.PITCH_CLASSES == tuple(range(48, 72))
    assert music.midi_to_hz(69) == pytest.approx(440.0)
    assert music.midi_to_hz(81) == pytest.approx(880.0)
