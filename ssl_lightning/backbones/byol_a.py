"""The BYOL-A audio CNN (Niizumi et al., IJCNN 2021; `AudioNTT2020` in nttcslab/byol-a).

Three conv blocks (3x3 conv, BatchNorm, ReLU, 2x2 max-pool) over a 64-bin log-mel, a frame-wise
MLP, and mean + max temporal pooling. Small and fast, it is also the library's default encoder
for CPU smoke runs and the spine's baselines.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.audio import LogMelSpectrogram
from ssl_lightning.nn.pooling import masked_max, masked_mean


class AudioNTT2020(nn.Module):
    """The BYOL-A CNN: `spec[B, 1, n_mels, frames] -> frame features[B, frames // 8, d]`."""

    def __init__(self, n_mels: int = 64, d: int = 2048, channels: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        if n_mels % 8:
            raise ValueError(f"n_mels must be divisible by 8 (three 2x2 max-pools), got {n_mels}")
        blocks = []
        for c_in in (1, channels, channels):
            blocks += [
                nn.Conv2d(c_in, channels, 3, stride=1, padding=1),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.MaxPool2d(2, stride=2),
            ]
        self.features = nn.Sequential(*blocks)
        self.fc = nn.Sequential(
            nn.Linear(channels * (n_mels // 8), d),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(d, d),
            nn.ReLU(),
        )

    def forward(self, spec: Tensor) -> Tensor:
        """`spec[B, 1, n_mels, frames]` -> frame features `[B, frames // 8, d]`."""
        x = self.features(spec)  # [B, C, F/8, T/8]
        x = rearrange(x, "b c f t -> b t (f c)")  # mel-major, channel fastest, as the original
        return self.fc(x)


class ByolAEncoder(nn.Module):
    """Waveform encoder: log-mel front-end, dataset normalisation, `AudioNTT2020`.

    `forward(waveform[B, T], padding_mask[B, T] | None) -> (features[B, N, d], padding_mask[B, N] | None)`,
    the audio-encoder contract every backbone follows, is `encode_spectrogram(spectrogram(waveform))`:
    two-view methods augment the normalised log-mel in between (`ssl_lightning.augment.ByolAViews`).
    `pool` is BYOL-A's mean + max over time.

    Args:
        d: embedding size (BYOL-A releases 512, 1024, 2048).
        channels: conv channels (64 in BYOL-A; smaller for smoke runs).
        norm_mean, norm_std: log-mel dataset statistics (BYOL-A's README example by default).
    """

    hop_length = 160
    downsample = 8

    def __init__(
        self,
        d: int = 2048,
        channels: int = 64,
        n_mels: int = 64,
        sample_rate: int = 16000,
        dropout: float = 0.3,
        norm_mean: float = -5.4919195,
        norm_std: float = 5.0389895,
    ) -> None:
        super().__init__()
        self.embed_dim = d
        self.norm_mean, self.norm_std = norm_mean, norm_std
        self.n_mels = n_mels
        self.frontend = LogMelSpectrogram(sample_rate=sample_rate, n_mels=n_mels, hop_length=self.hop_length)
        self.cnn = AudioNTT2020(n_mels=n_mels, d=d, channels=channels, dropout=dropout)

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """`waveform[B, T]` (16 kHz), bool `padding_mask[B, T]` -> (frame features `[B, N, d]`, frame
        padding mask `[B, N]` or None)."""
        features, _ = self.encode_spectrogram(self.spectrogram(waveform))
        return features, self.frame_mask(padding_mask, features.shape[1])

    def spectrogram(self, waveform: Tensor) -> Tensor:
        """Log-mel, dataset-normalised (BYOL-A's pre-norm): `[B, T] -> [B, 1 + T // 160, n_mels]`."""
        return (self.frontend(waveform) - self.norm_mean) / self.norm_std

    def encode_spectrogram(self, spec: Tensor) -> tuple[Tensor, None]:
        """CNN features of a (possibly augmented) normalised log-mel:
        `spec[B, frames, n_mels] -> (features[B, frames // 8, d], None)`."""
        if spec.dim() != 3 or spec.shape[2] != self.n_mels:
            raise ValueError(
                f"encode_spectrogram needs spec [B, frames, {self.n_mels}] (from `spectrogram`); "
                f"got shape {tuple(spec.shape)}"
            )
        return self.cnn(rearrange(spec, "b t f -> b 1 f t")), None

    def frame_mask(self, padding_mask: Tensor | None, num_frames: int) -> Tensor | None:
        """Output frame j is padding when every spectrogram frame it pools has its centre sample padded."""
        if padding_mask is None or not padding_mask.any():
            return None
        index = torch.arange(num_frames * self.downsample, device=padding_mask.device) * self.hop_length
        centres = padding_mask[:, index.clamp(max=padding_mask.shape[1] - 1)]
        return rearrange(centres, "b (n k) -> b n k", k=self.downsample).all(dim=-1)

    def group_matcher(self, coarse: bool = False) -> Callable[[str], int]:
        """Layer ids for layer-wise LR decay: front-end 0, conv blocks 1-3, the two fc layers 4-5."""

        def layer(name: str) -> int:
            parts = name.split(".")
            if parts[0] == "cnn" and parts[1] == "features":
                return 1 + int(parts[2]) // 4
            if parts[0] == "cnn" and parts[1] == "fc":
                return 4 + int(parts[2]) // 3
            return 0

        return layer

    def pool(self, features: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """BYOL-A pooling: max over time plus mean over time, `[B, N, d] -> [B, d]`."""
        return masked_max(features, padding_mask) + masked_mean(features, padding_mask)
