"""DABS 1.0's speech front-end (Tamkin et al. 2021, `src/datasets/speech/*.py` at commit 7ee9a71) in torch.

Every DABS speech data set turns a waveform at its files' own rate (16 kHz; AudioMNIST 48 kHz, where the
150,526 samples last 3.1 s) into one `1 x 224 x 224` image the same way:
- cut or pad to `DABS_NUM_SAMPLES` = 150,526 samples (~9.4 s): a longer clip keeps its first samples
  (evaluation) or, in training, its first or its last ones at random (`random.getrandbits(1)`: never an
  offset in between); a shorter clip is zero-padded after its end ("pad w/ silence");
- `librosa.feature.melspectrogram(padded, sample_rate, hop_length=672, n_mels=224)`, every other argument
  at librosa's default (0.8, the positional call predates 0.10): n_fft 2048, win_length 2048, periodic
  Hann window, center=True with reflect padding (n_fft // 2 each side), power 2, fmin 0, fmax sr / 2,
  Slaney mel scale (htk=False) and Slaney area normalisation (norm="slaney"); 1 + 150,526 // 672 = 224
  frames;
- `librosa.power_to_db(spectrum**2)`: the power mel spectrogram is squared again, then
  `10 log10(max(amin, S**2)) - 10 log10(max(amin, ref))` with ref 1, amin 1e-10, floored at its maximum
  minus top_db = 80 dB (per clip);
- `Normalize(mean, std)` with one scalar pair per data set (`DABS_STATS`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torchaudio
from torch import Tensor

DABS_SAMPLE_RATE = 16000
DABS_NUM_SAMPLES = 150526
"""DABS's `MAX_LENGTH`: every clip is cut or zero-padded to this many samples."""
DABS_N_FFT = 2048
DABS_HOP_LENGTH = 672
DABS_N_MELS = 224

DABS_STATS: dict[str, tuple[float, float]] = {
    "librispeech": (-22.924, 12.587),
    "speech_commands": (-46.847, 19.151),
    "fluent": (-31.809, 13.127),
    "audio_mnist": (-90.293, 11.799),
    "voxceleb1": (-37.075, 19.776),
}
"""(mean, std) of the log-mel values that DABS normalises each data set with (its `*_MEAN`, `*_STDEV`
constants; LibriSpeech's for pre-training and the LibriSpeech speaker task)."""

Side = Literal["start", "end"]


def dabs_cut_or_pad(waveform: Tensor, side: Side = "start", num_samples: int = DABS_NUM_SAMPLES) -> Tensor:
    """`[T]` -> `[num_samples]`: the first (`side="start"`) or last (`"end"`) `num_samples` of a longer
    clip; a shorter one zero-padded after its end (whatever `side`)."""
    if waveform.dim() != 1:
        raise ValueError(f"waveform must be [T]; got shape {tuple(waveform.shape)}")
    if side not in ("start", "end"):
        raise ValueError(f"side must be 'start' or 'end', got {side!r}")
    if waveform.numel() > num_samples:
        return waveform[:num_samples] if side == "start" else waveform[-num_samples:]
    return torch.nn.functional.pad(waveform, (0, num_samples - waveform.numel()))


def power_to_db(power: Tensor, ref: float = 1.0, amin: float = 1e-10, top_db: float | None = 80.0) -> Tensor:
    """librosa's `power_to_db` of spectrograms `[..., F, T]`: `10 log10(max(amin, S)) - 10 log10(max(amin,
    ref))`, floored at each spectrogram's maximum minus `top_db` (None: no floor)."""
    db = 10.0 * torch.log10(power.clamp_min(amin)) - 10.0 * math.log10(max(amin, ref))
    if top_db is None:
        return db
    peak = db.amax(dim=(-2, -1), keepdim=True)
    return torch.maximum(db, peak - top_db)


class DabsLogMel(torch.nn.Module):
    """Waveforms `[B, T]` (T = `DABS_NUM_SAMPLES` after `dabs_cut_or_pad`) -> DABS images
    `[B, 1, n_mels, 1 + T // hop_length]` (`[B, 1, 224, 224]` at the defaults): the mel spectrogram,
    `power_to_db(mel**2)`, then `(x - mean) / std` when `mean` and `std` are given.
    """

    def __init__(
        self,
        mean: float | None = None,
        std: float | None = None,
        sample_rate: int = DABS_SAMPLE_RATE,
        n_fft: int = DABS_N_FFT,
        hop_length: int = DABS_HOP_LENGTH,
        n_mels: int = DABS_N_MELS,
    ) -> None:
        super().__init__()
        if (mean is None) != (std is None) or (std is not None and not std > 0):
            raise ValueError(f"give both mean and a positive std, or neither; got mean={mean}, std={std}")
        self.mean, self.std = mean, std
        self.mel_spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            f_min=0.0,
            f_max=sample_rate / 2,
            n_mels=n_mels,
            window_fn=torch.hann_window,
            power=2.0,
            center=True,
            pad_mode="reflect",
            norm="slaney",
            mel_scale="slaney",
        )

    def forward(self, waveform: Tensor) -> Tensor:
        """`[B, T]` -> `[B, 1, n_mels, 1 + T // hop_length]`."""
        if waveform.dim() != 2:
            raise ValueError(
                f"waveform must be [B, T]; got shape {tuple(waveform.shape)} (use x[None] for one clip)"
            )
        db = power_to_db(self.mel_spectrogram(waveform) ** 2)
        if self.mean is not None:
            db = (db - self.mean) / self.std
        return db.unsqueeze(1)
