"""BYOL-A style log-mel spectrogram (methods_facts.md, 3.1): torchaudio mel power spectrogram, then log."""

import torch
import torchaudio
from einops import rearrange
from torch import Tensor


class LogMelSpectrogram(torch.nn.Module):
    """Waveform `[B, T]` -> log-mel `[B, frames, n_mels]` with frames = 1 + T // hop_length (centred frames).

    Power-2 mel spectrogram (HTK mel scale, no filter normalisation, reflect padding) followed by
    `log(mel + eps)`, eps = float32 machine epsilon. The defaults are BYOL-A's: 0.95 s at 16 kHz gives 96
    frames of 64 mels.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        win_length: int = 1024,
        hop_length: int = 160,
        n_mels: int = 64,
        f_min: float = 60.0,
        f_max: float = 7800.0,
    ) -> None:
        super().__init__()
        self.eps = torch.finfo(torch.float32).eps
        self.mel_spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            win_length=win_length,
            hop_length=hop_length,
            f_min=f_min,
            f_max=f_max,
            n_mels=n_mels,
            power=2.0,
            center=True,
        )

    def forward(self, waveform: Tensor) -> Tensor:
        """`[B, T]` -> `[B, 1 + T // hop_length, n_mels]`."""
        if waveform.dim() != 2:
            raise ValueError(
                f"waveform must be [B, T]; got shape {tuple(waveform.shape)} (use x[None] for one clip)"
            )
        mel = self.mel_spectrogram(waveform)
        return rearrange(torch.log(mel + self.eps), "b mels frames -> b frames mels")
