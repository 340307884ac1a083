"""In-memory Hugging Face tables with an `Audio` feature, as `datasets` returns them from the hub: the
fixture of every datamodule's `hub=` path (no download). Not a datamodule layout: the recipe tests skip it.
"""

from __future__ import annotations

import io

import numpy as np
import soundfile


def wav_bytes(waveform: np.ndarray, sample_rate: int) -> bytes:
    """`waveform` [T] encoded as a 16-bit wav file."""
    buffer = io.BytesIO()
    soundfile.write(
        buffer, np.asarray(waveform, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def tone(frequency: float, seconds: float, sample_rate: int) -> np.ndarray:
    """A sine of `frequency` Hz, amplitude 0.5."""
    return 0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * sample_rate)) / sample_rate)


def audio_table(
    columns: dict[str, list], waveforms: list[np.ndarray], sample_rate: int, audio: str = "audio"
):
    """A `datasets.Dataset` with `columns` and the audio column `audio` (an `Audio` feature holding wav
    bytes of `waveforms`)."""
    import datasets

    cells = [{"bytes": wav_bytes(w, sample_rate), "path": None} for w in waveforms]
    return datasets.Dataset.from_dict({**columns, audio: cells}).cast_column(audio, datasets.Audio())
