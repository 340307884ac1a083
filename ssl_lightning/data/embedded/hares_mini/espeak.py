"""Deterministic offline speech synthesis with eSpeak NG, driven through ``ctypes``.

The shared library and its ``espeak-ng-data`` come from the PyPI package ``espeakng-loader``.
The C API (``speak_lib.h``, ``espeak_ng.h``) runs in synchronous output mode: ``espeak_Synth``
returns once the whole utterance has gone through the synth callback, which collects the int16
samples.  Initialisation goes through ``espeak_ng_Initialize``, which reports a missing or broken
data folder as a status (``espeak_Initialize`` would call ``exit``).

eSpeak NG keeps state across utterances that no API call resets: the pitch-flutter table index,
the glottal cycle counter behind "roughness", and a pseudo-random generator (breath noise).  To
make one utterance depend only on its own arguments, the library reads its voice variants from
an overlay of ``espeak-ng-data`` (built once under ``$SSL_LIGHTNING_DATA``) whose variants, copies
of the shipped ``!v`` files, add ``flutter 0`` and ``roughness 8`` (both switched off), and every
utterance reseeds the generator with ``espeak_ng_SetRandSeed``.  The library is initialised once
per process, lazily, and every call holds a lock: eSpeak NG is not re-entrant.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Values from speak_lib.h and espeak_ng.h.
_ENS_OK = 0
_ENOUTPUT_MODE_SYNCHRONOUS = 1
_ESPEAK_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_ESPEAK_RATE, _ESPEAK_VOLUME, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 2, 3, 4
_EE_OK = 0
_BUFFER_MS = 200
# eSpeak's clipping guard keeps its gain across utterances, so stay below full scale: at 60 the
# peaks measured 0.71 of full scale over all variants and the whole rate/pitch/range span.
_VOLUME = 60

# Shipped variants copied into the overlay ("m3", "f2", ...); "plain" adds nothing to the base voice.
VOICE_VARIANTS: tuple[str, ...] = (
    "plain",
    *(f"m{i}" for i in range(1, 9)),
    *(f"f{i}" for i in range(1, 6)),
)
_OVERRIDES = "\nflutter 0\nroughness 8\n"  # later lines of a voice file win
DATA_ENV = "SSL_LIGHTNING_DATA"


@dataclass(frozen=True)
class Voice:
    """One eSpeak NG voice setting.

    ``language``: an eSpeak NG language/accent name (``"en-us"``, ``"de"``, ``"es-419"``);
    ``variant``: one of ``VOICE_VARIANTS``; ``rate`` in words per minute (80-450);
    ``pitch`` and ``pitch_range`` in 0-100 (50 = the voice's normal).
    """

    language: str
    variant: str = "plain"
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


class _SynthEvent(ctypes.Structure):
    """``espeak_EVENT`` (only passed through; its fields are not read)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_SynthEvent)
)


def loader_paths() -> tuple[str, str]:
    """Return ``(library_path, data_path)`` of the eSpeak NG shipped by ``espeakng-loader``."""
    try:
        import espeakng_loader

        return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()
    except (ImportError, RuntimeError) as error:
        raise RuntimeError(
            "speech synthesis for hares-mini needs eSpeak NG from the PyPI package espeakng-loader "
            f"(pip install espeakng-loader); loading it failed: {error}"
        ) from error


def open_library(library_path: str) -> ctypes.CDLL:
    """Load ``libespeak-ng`` from ``library_path`` and declare the C signatures used here."""
    try:
        lib = ctypes.CDLL(library_path)
    except OSError as error:
        raise RuntimeError(
            f"could not load the eSpeak NG library {library_path!r} ({error}); hares-mini speech needs "
            "espeakng-loader (pip install espeakng-loader)"
        ) from error
    lib.espeak_ng_InitializePath.argtypes = [ctypes.c_char_p]
    lib.espeak_ng_InitializePath.restype = None
    lib.espeak_ng_Initialize.argtypes = [ctypes.c_void_p]
    lib.espeak_ng_InitializeOutput.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p]
    lib.espeak_ng_GetStatusCodeMessage.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
    lib.espeak_ng_GetStatusCodeMessage.restype = None
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    return lib


def _cache_root() -> Path:
    """``$SSL_LIGHTNING_DATA``, else ``~/.cache/ssl_lightning`` (the root ``build.py`` uses)."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "ssl_lightning").expanduser()


def _variant_texts(data_path: Path) -> dict[str, str]:
    """Text of each of ``VOICE_VARIANTS``: the shipped file plus the deterministic overrides."""
    texts = {}
    for variant in VOICE_VARIANTS:
        shipped = data_path / "voices" / "!v" / variant
        if variant != "plain" and not shipped.is_file():
            raise RuntimeError(f"eSpeak NG data {data_path} lacks the voice variant file {shipped}")
        texts[variant] = (shipped.read_text(encoding="utf-8") if variant != "plain" else "") + _OVERRIDES
    return texts


def overlay_root(data_path: Path) -> Path:
    """The folder whose ``espeak-ng-data`` overlays ``data_path``, built on first use and shared.

    Every entry links to the shipped data except ``voices/!v``, which holds ``VOICE_VARIANTS``
    with flutter and roughness switched off.  It lives under the data root, named after a hash
    of ``data_path`` and the variant texts; concurrent processes race safely (build, then rename).
    """
    texts = _variant_texts(data_path)
    key = hashlib.sha256(repr((str(data_path.resolve()), sorted(texts.items()))).encode()).hexdigest()[:16]
    root = _cache_root() / f"espeak-ng-overlay-{key}"
    if root.is_dir():
        return root
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    except OSError as error:
        raise RuntimeError(
            f"cannot write the eSpeak NG voice overlay under {root.parent} ({error}); "
            f"set {DATA_ENV} to a writable folder"
        ) from error
    partial.chmod(0o755)
    overlay = partial / "espeak-ng-data"
    (overlay / "voices" / "!v").mkdir(parents=True)
    for entry in [*data_path.iterdir(), *(data_path / "voices").iterdir()]:
        if entry.name not in ("voices", "!v"):
            (overlay / entry.relative_to(data_path)).symlink_to(entry)
    for variant, text in texts.items():
        (overlay / "voices" / "!v" / variant).write_text(text, encoding="utf-8")
    try:
        partial.rename(root)
    except OSError:
        shutil.rmtree(partial)
        if not root.is_dir():
            raise
    return root


class _Engine:
    """The process-wide initialised library plus the buffer its synth callback fills."""

    def __init__(self, library_path: str, data_path: str) -> None:
        self.lib = open_library(library_path)
        self.chunks: list[np.ndarray] = []
        self.callback = _SynthCallback(self._collect)
        self.lib.espeak_ng_InitializePath(os.fsencode(overlay_root(Path(data_path))))
        self._check(self.lib.espeak_ng_Initialize(None), f"loading its data from {data_path}")
        self._check(
            self.lib.espeak_ng_InitializeOutput(_ENOUTPUT_MODE_SYNCHRONOUS, _BUFFER_MS, None),
            "setting up synchronous output",
        )
        self.sample_rate = self.lib.espeak_ng_GetSampleRate()
        self.lib.espeak_SetSynthCallback(self.callback)

    def _check(self, status: int, doing: str) -> None:
        """Raise a RuntimeError with eSpeak NG's message unless ``status`` is ``ENS_OK``."""
        if status != _ENS_OK:
            message = ctypes.create_string_buffer(512)
            self.lib.espeak_ng_GetStatusCodeMessage(status, message, len(message))
            raise RuntimeError(f"eSpeak NG failed {doing}: {message.value.decode(errors='replace')}")

    def _collect(self, wav: ctypes._Pointer, num_samples: int, _events: ctypes._Pointer) -> int:
        if wav and num_samples > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, (num_samples,)).copy())
        return 0

    def synthesize(self, text: str, voice: Voice, seed: int) -> np.ndarray:
        """Return int16 samples ``[T]`` of ``text`` spoken by ``voice``."""
        if voice.variant not in VOICE_VARIANTS:
            raise ValueError(f"unknown eSpeak voice variant {voice.variant!r}; valid: {VOICE_VARIANTS}")
        name = f"{voice.language}+{voice.variant}"
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            raise ValueError(f"eSpeak NG has no voice {voice.language!r} (asked for {name!r})")
        for parameter, value in (
            (_ESPEAK_RATE, voice.rate),
            (_ESPEAK_PITCH, voice.pitch),
            (_ESPEAK_RANGE, voice.pitch_range),
            (_ESPEAK_VOLUME, _VOLUME),
        ):
            if self.lib.espeak_SetParameter(parameter, value, 0) != _EE_OK:
                raise ValueError(f"eSpeak NG rejected parameter {parameter} = {value} for {voice}")
        self.lib.espeak_ng_SetRandSeed(seed)
        self.chunks.clear()
        encoded = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        if status != _EE_OK or self.lib.espeak_Synchronize() != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed (status {status}) for {text!r} with {voice}")
        samples = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.int16)
        self.chunks.clear()
        return samples


_lock = threading.Lock()
_engine: _Engine | None = None


def _reset_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_lock_in_child)


def _get_engine() -> _Engine:
    global _engine
    if _engine is None:
        _engine = _Engine(*loader_paths())
    return _engine


def native_sample_rate() -> int:
    """Sample rate (Hz) of eSpeak NG's output (22050 for the shipped voices)."""
    with _lock:
        return _get_engine().sample_rate


def synthesize(text: str, voice: Voice, seed: int) -> np.ndarray:
    """Speak ``text`` (UTF-8, any script the language reads) with ``voice``.

    ``seed`` seeds eSpeak's own noise generator; equal arguments give equal output whatever was
    synthesised before in this process.  Returns float32 ``[T]`` in [-1, 1] at
    ``native_sample_rate()``, including eSpeak's leading and trailing silence.
    """
    with _lock:
        samples = _get_engine().synthesize(text, voice, seed)
    return samples.astype(np.float32) / 32768.0
