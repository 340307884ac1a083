"""Speech domain of hares-mini: spoken keywords and spoken-language identification.

Keywords mirror the 12-class Speech Commands v1 layout (10 command words, ``_unknown_`` for other
words, ``_silence_`` for background noise alone); languages mirror VoxForge's six.  Utterances are
synthesised with eSpeak NG (``espeak.py``) under a randomly drawn accent, voice variant, pitch,
pitch range and rate, placed at a random offset (or randomly cropped), scaled to a random level
and mixed with coloured background noise at a random SNR.  Every random choice comes from the
caller's ``numpy.random.Generator``: the same generator state gives the same clip.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.signal import firwin, resample_poly

from ssl_lightning.data.embedded.hares_mini import espeak

KEYWORD_CLASSES: tuple[str, ...] = (
    "yes",
    "no",
    "up",
    "down",
    "left",
    "right",
    "on",
    "off",
    "stop",
    "go",
    "_unknown_",
    "_silence_",
)
UNKNOWN_LABEL = "_unknown_"
SILENCE_LABEL = "_silence_"
# The 20 auxiliary words of Speech Commands v0.01.
UNKNOWN_WORDS: tuple[str, ...] = (
    "bed",
    "bird",
    "cat",
    "dog",
    "eight",
    "five",
    "four",
    "happy",
    "house",
    "marvin",
    "nine",
    "one",
    "seven",
    "sheila",
    "six",
    "three",
    "tree",
    "two",
    "wow",
    "zero",
)
LANGUAGES: tuple[str, ...] = ("de", "en", "es", "fr", "it", "ru")

# eSpeak NG accents: English ones for keywords (speakers of Speech Commands), and per language
# (fr-be and fr-ch are left out: they only differ from fr in how numbers are read).
ENGLISH_ACCENTS: tuple[str, ...] = (
    "en",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
    "en-029",
)
LANGUAGE_ACCENTS: dict[str, tuple[str, ...]] = {
    "de": ("de",),
    "en": ("en", "en-us"),
    "es": ("es", "es-419"),
    "fr": ("fr",),
    "it": ("it",),
    "ru": ("ru",),
}
# Common words per language; sentences are random sequences of them (prosody and phonetics
# matter here, not meaning).
VOCABULARY: dict[str, tuple[str, ...]] = {
    "de": tuple(
        "ich du er sie wir das ist nicht und mit der die ein eine haben sein gehen kommen sehen "
        "machen heute morgen immer schon noch sehr gut schön groß klein Haus Straße Stadt Wasser "
        "Brot Kinder Freund Zeit Jahr Abend Nacht Frühling zwölf möchte Bücher über Mädchen".split()
    ),
    "en": tuple(
        "I you he she we they the a is are not and with have go come see make today tomorrow "
        "always already still very good nice big small house street city water bread children "
        "friend time year evening night think through thought weather mother brother".split()
    ),
    "es": tuple(
        "yo tú él ella nosotros ellos el la un una es son no y con tener ir venir ver hacer hoy "
        "mañana siempre ya todavía muy bueno bonito grande pequeño casa calle ciudad agua pan "
        "niños amigo tiempo año noche trabajo señor perro corazón".split()
    ),
    "fr": tuple(
        "je tu il elle nous vous le la un une est sont pas et avec avoir aller venir voir faire "
        "aujourd'hui demain toujours déjà encore très bon beau grand petit maison rue ville eau "
        "pain enfants ami temps année soir nuit travail monsieur chien cœur".split()
    ),
    "it": tuple(
        "io tu lui lei noi voi il la un una è sono non e con avere andare venire vedere fare oggi "
        "domani sempre già ancora molto buono bello grande piccolo casa strada città acqua pane "
        "bambini amico tempo anno sera notte lavoro signore cane cuore".split()
    ),
    "ru": tuple(
        "я ты он она мы вы они это не и в с быть иметь идти прийти видеть делать сегодня завтра "
        "всегда уже ещё очень хороший красивый большой маленький дом улица город вода хлеб дети "
        "друг время год вечер ночь работа собака сердце здравствуйте спасибо".split()
    ),
}

_SENTENCE_ENDINGS = (".", ".", ",", "?", "!")
_KEYWORD_RATE_WPM = (100, 240)
_LANGUAGE_RATE_WPM = (120, 230)
_PITCH = (15, 85)
_PITCH_RANGE = (20, 90)
_PEAK_DBFS = (-25.0, -3.0)
_SNR_DB = (5.0, 30.0)
_SILENCE_DBFS = (-60.0, -25.0)
_NOISE_SLOPE = (0.0, 2.0)  # power spectrum ~ f^-slope: 0 white, 1 pink, 2 brown
_NOISE_CORNER_HZ = (40.0, 400.0)  # the slope flattens below this frequency
_TRIM_DB = -40.0
_TRIM_MARGIN_S = 0.01
# Words per beat of the speaking rate (rate / 60 beats per second): eSpeak NG speaks one of these
# words in 0.8 (fr) to 1.0 (es) beats, so 1.3 words per beat mostly fill the window at once.
_WORDS_PER_BEAT = 1.3


def _check_size(sample_rate: int, num_samples: int) -> None:
    if sample_rate <= 0 or num_samples <= 0:
        raise ValueError(
            f"sample_rate and num_samples must be positive, got sample_rate={sample_rate}, "
            f"num_samples={num_samples}"
        )


def _random_voice(
    rng: np.random.Generator, accents: tuple[str, ...], rate_wpm: tuple[int, int]
) -> espeak.Voice:
    """Draw an accent, voice variant, rate, pitch and pitch range."""
    return espeak.Voice(
        language=str(rng.choice(accents)),
        variant=str(rng.choice(espeak.VOICE_VARIANTS)),
        rate=int(rng.integers(*rate_wpm, endpoint=True)),
        pitch=int(rng.integers(*_PITCH, endpoint=True)),
        pitch_range=int(rng.integers(*_PITCH_RANGE, endpoint=True)),
    )


@functools.lru_cache(maxsize=8)
def _lowpass(up: int, down: int) -> np.ndarray:
    """Anti-aliasing FIR taps for ``resample_poly(x, up, down)`` (its default design, made once).

    A polyphase FIR is single-threaded and ~2 ms per utterance, where torch's conv1d resampler took
    20-50 ms on 2 busy cores.
    """
    rate = max(up, down)
    return firwin(20 * rate + 1, 1.0 / rate, window=("kaiser", 5.0))


def _speak(rng: np.random.Generator, text: str, voice: espeak.Voice, sample_rate: int) -> np.ndarray:
    """Synthesise ``text``, trim leading/trailing silence, resample: float32 ``[T]``."""
    native = espeak.native_sample_rate()
    wave = espeak.synthesize(text, voice, seed=int(rng.integers(2**31 - 1)))
    loud = np.flatnonzero(np.abs(wave) > np.abs(wave).max(initial=0.0) * 10 ** (_TRIM_DB / 20))
    if loud.size == 0:
        raise RuntimeError(f"eSpeak NG produced no sound for {text!r} with {voice}")
    margin = int(_TRIM_MARGIN_S * native)
    wave = wave[max(loud[0] - margin, 0) : loud[-1] + margin + 1]
    if sample_rate != native:
        up, down = sample_rate // math.gcd(native, sample_rate), native // math.gcd(native, sample_rate)
        wave = resample_poly(wave, up, down, window=_lowpass(up, down)).astype(np.float32)
    return wave


def _fit(rng: np.random.Generator, wave: np.ndarray, num_samples: int) -> tuple[np.ndarray, slice]:
    """Place ``wave`` at a random offset in ``num_samples`` zeros, or take a random crop of it.

    Returns the ``[num_samples]`` window and the slice of it that the speech occupies.
    """
    if wave.size >= num_samples:
        start = int(rng.integers(wave.size - num_samples + 1))
        return wave[start : start + num_samples].copy(), slice(0, num_samples)
    offset = int(rng.integers(num_samples - wave.size + 1))
    window = np.zeros(num_samples, dtype=np.float32)
    window[offset : offset + wave.size] = wave
    return window, slice(offset, offset + wave.size)


def background_noise(rng: np.random.Generator, sample_rate: int, num_samples: int) -> np.ndarray:
    """Coloured Gaussian noise ``[num_samples]`` with unit RMS.

    Power spectrum ~ ``f^-slope`` above a random corner frequency and flat below it, with the slope
    drawn between white (0) and brown (2), like the noise recordings of Speech Commands.
    """
    _check_size(sample_rate, num_samples)
    slope = rng.uniform(*_NOISE_SLOPE)
    corner = rng.uniform(*_NOISE_CORNER_HZ)
    freqs = np.fft.rfftfreq(num_samples, d=1.0 / sample_rate)
    spectrum = rng.standard_normal(freqs.size) + 1j * rng.standard_normal(freqs.size)
    spectrum *= np.maximum(freqs, corner) ** (-slope / 2)
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / max(np.sqrt(np.mean(noise**2)), 1e-12)).astype(np.float32)


def _mix(rng: np.random.Generator, wave: np.ndarray, sample_rate: int, num_samples: int) -> np.ndarray:
    """Fit speech into the window at a random peak level and add noise at a random SNR."""
    window, speech = _fit(rng, wave, num_samples)
    peak = np.abs(window).max()
    if peak == 0.0:
        raise RuntimeError(
            f"the {num_samples}-sample crop of the utterance is silent (a pause as long as the window); "
            "use a longer window"
        )
    window *= 10 ** (rng.uniform(*_PEAK_DBFS) / 20) / peak
    speech_rms = np.sqrt(np.mean(window[speech] ** 2))
    noise_rms = speech_rms / 10 ** (rng.uniform(*_SNR_DB) / 20)
    mixed = window + noise_rms * background_noise(rng, sample_rate, num_samples)
    return np.clip(mixed, -1.0, 1.0).astype(np.float32)


def keyword_clip(rng: np.random.Generator, label: str, sample_rate: int, num_samples: int) -> np.ndarray:
    """One Speech-Commands-like clip of class ``label`` (one of ``KEYWORD_CLASSES``).

    The word (a random ``UNKNOWN_WORDS`` entry for ``_unknown_``) is spoken by a random English
    voice, placed at a random offset in the window and mixed with background noise at 5-30 dB
    SNR; ``_silence_`` is background noise alone at -60 to -25 dBFS RMS.
    Returns float32 ``[num_samples]`` in [-1, 1].
    """
    if label not in KEYWORD_CLASSES:
        raise ValueError(f"unknown keyword label {label!r}; valid labels: {KEYWORD_CLASSES}")
    _check_size(sample_rate, num_samples)
    if label == SILENCE_LABEL:
        level = 10 ** (rng.uniform(*_SILENCE_DBFS) / 20)
        return np.clip(level * background_noise(rng, sample_rate, num_samples), -1.0, 1.0).astype(np.float32)
    word = str(rng.choice(UNKNOWN_WORDS)) if label == UNKNOWN_LABEL else label
    voice = _random_voice(rng, ENGLISH_ACCENTS, _KEYWORD_RATE_WPM)
    return _mix(rng, _speak(rng, word, voice, sample_rate), sample_rate, num_samples)


def random_sentences(rng: np.random.Generator, language: str, num_words: int) -> str:
    """``num_words`` random words of ``VOCABULARY[language]`` split into short punctuated phrases."""
    if language not in VOCABULARY:
        raise ValueError(f"unknown language {language!r}; valid languages: {LANGUAGES}")
    words = list(rng.choice(VOCABULARY[language], size=num_words))
    phrases = []
    while words:
        length = int(rng.integers(3, 9))
        phrase = " ".join(words[:length])
        phrases.append(phrase[0].upper() + phrase[1:] + str(rng.choice(_SENTENCE_ENDINGS)))
        words = words[length:]
    return " ".join(phrases)


def language_clip(rng: np.random.Generator, language: str, sample_rate: int, num_samples: int) -> np.ndarray:
    """One VoxForge-like clip of ``language`` (one of ``LANGUAGES``).

    Random sentences from the language's vocabulary, spoken by a random voice of that language
    and long enough to fill the window (re-drawn longer until they do), randomly cropped to
    ``num_samples`` and mixed with background noise at 5-30 dB SNR.
    Returns float32 ``[num_samples]`` in [-1, 1].
    """
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; valid languages: {LANGUAGES}")
    _check_size(sample_rate, num_samples)
    voice = _random_voice(rng, LANGUAGE_ACCENTS[language], _LANGUAGE_RATE_WPM)
    num_words = math.ceil(_WORDS_PER_BEAT * num_samples / sample_rate * voice.rate / 60)
    wave = _speak(rng, random_sentences(rng, language, num_words), voice, sample_rate)
    while wave.size < num_samples:
        num_words = math.ceil(num_words * _WORDS_PER_BEAT * num_samples / wave.size)
        wave = _speak(rng, random_sentences(rng, language, num_words), voice, sample_rate)
    return _mix(rng, wave, sample_rate, num_samples)
