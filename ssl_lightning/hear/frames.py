"""Frame embeddings of whole clips for the HEAR API: where each encoder frame sits in time, and windowed
encoding of audio of any length.

An encoder frame i covers the samples `[i * hop, i * hop + span)` (its centre `i * hop + span / 2`) and
holds `tokens_per_frame` consecutive tokens of the encoder's output (BEATs: the 8 frequency patches of
one time step, time-major). `FrameGeometry` records this per encoder family:

- BEATs: 16 x 16 patches of 10 ms fbank frames (25 ms windows): hop 2560 samples (160 ms), span
  400 + 15 * 160 = 2800, 128 / 16 = 8 tokens per frame.
- data2vec audio: the conv feature extractor's total stride (320 = 20 ms for the standard stack) and
  receptive field (400), one token per frame.
- BYOL-A: log-mel hop 160 (centred 1024-sample windows) pooled 8x in time: hop 1280 (80 ms), span
  1120, one token per frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from ssl_lightning.backbones import BEATsEncoder, ByolAEncoder, Data2VecAudioEncoder
from ssl_lightning.methods import SSLMethod

SAMPLE_RATE = 16000
"""The rate BEATs' fbank and data2vec audio take."""
FBANK_HOP, FBANK_WINDOW = 160, 400
"""BEATs' Kaldi fbank at 16 kHz: 10 ms hop, 25 ms window, in samples."""


@dataclass(frozen=True)
class FrameGeometry:
    """Where an encoder's frames lie: frame i covers samples `[i * hop, i * hop + span)` at
    `sample_rate`, and is `tokens_per_frame` consecutive output tokens."""

    sample_rate: int
    hop: int
    span: int
    tokens_per_frame: int = 1

    def num_frames(self, num_samples: int) -> int:
        """Frames whose centre lies within `num_samples` (at least one, so short audio has a frame)."""
        return max(1, (2 * num_samples - self.span) // (2 * self.hop) + 1)

    def timestamps(self, num_frames: int) -> Tensor:
        """Frame centres in milliseconds, float32 `[num_frames]` (each from its index: no drift)."""
        index = torch.arange(num_frames, dtype=torch.float64)
        return ((index * self.hop + self.span / 2) * 1000 / self.sample_rate).float()

    def window_samples(self, num_frames: int) -> int:
        """Samples an encoder pass needs to output exactly `num_frames` frames."""
        return (num_frames - 1) * self.hop + self.span


def frame_geometry(encoder: nn.Module) -> FrameGeometry:
    """The `FrameGeometry` of an encoder (a compiled one is unwrapped).

    Raises:
        TypeError: the encoder family has no known frame layout (the message lists those that do).
    """
    encoder = getattr(encoder, "_orig_mod", encoder)
    if isinstance(encoder, BEATsEncoder):
        patch = encoder.patch_size
        frames_span = FBANK_WINDOW + (patch - 1) * FBANK_HOP
        return FrameGeometry(SAMPLE_RATE, patch * FBANK_HOP, frames_span, encoder.fbank.num_mel_bins // patch)
    if isinstance(encoder, Data2VecAudioEncoder):
        return FrameGeometry(SAMPLE_RATE, math.prod(encoder.config.conv_stride), encoder.min_samples)
    if isinstance(encoder, ByolAEncoder):
        hop = encoder.hop_length * encoder.downsample
        sample_rate = int(encoder.frontend.mel_spectrogram.sample_rate)
        return FrameGeometry(sample_rate, hop, hop - encoder.hop_length)
    raise TypeError(
        f"the HEAR API knows the frame layout of BEATsEncoder, Data2VecAudioEncoder and ByolAEncoder, not "
        f"{type(encoder).__name__}; use a checkpoint of a method with one of those encoders"
    )


class HearModel(nn.Module):
    """A frozen method's encoder served the HEAR way: `frames(audio)` gives frame embeddings and their
    centres for audio of any length.

    Audio is cut into non-overlapping windows of at most `window_seconds` (whole frames each, so the frames
    of consecutive windows are those of one long pass), zero-padded at the end to whole frames; each window
    is encoded on its own, `max_windows` at a time. Every sound of a batch has the same length, so padding
    and windows are the same for all and an item's embedding does not depend on the others (eval mode).

    Attributes (the HEAR API's): `sample_rate`, `scene_embedding_size` and `timestamp_embedding_size` (D).

    Args:
        method: any ssl_lightning method; its `embed_sequence` gives the tokens. Put in eval mode, frozen.
        window_seconds: the longest audio one encoder pass sees (10 s: AudioSet clips, BEATs' pre-training
            length).
        max_windows: windows encoded in one batch (bounds memory on long audio).
    """

    def __init__(self, method: SSLMethod, window_seconds: float = 10.0, max_windows: int = 32) -> None:
        super().__init__()
        self.method = method.eval().requires_grad_(False)
        self.geometry = frame_geometry(method.encoder)
        window = round(window_seconds * self.geometry.sample_rate)
        if window < self.geometry.span or max_windows < 1:
            span, rate = self.geometry.span, self.geometry.sample_rate
            raise ValueError(
                f"window_seconds must hold one frame ({span} samples at {rate} Hz) and max_windows must be "
                f">= 1; got {window_seconds}, {max_windows}"
            )
        self.frames_per_window = (window - self.geometry.span) // self.geometry.hop + 1
        self.max_windows = max_windows
        self.sample_rate = self.geometry.sample_rate
        self.scene_embedding_size = self.timestamp_embedding_size = int(method.embed_dim)

    def frames(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """`audio[n_sounds, n_samples]` in [-1, 1] -> (float32 `[n_sounds, n_frames, D]`, their centres in
        ms `[n_sounds, n_frames]`), frames whose centres lie within the audio (at least one)."""
        if audio.dim() != 2 or audio.shape[1] == 0:
            raise ValueError(
                f"audio must be [n_sounds, n_samples] with n_samples > 0; got shape {tuple(audio.shape)}"
            )
        device = next(self.method.parameters()).device
        audio = audio.to(device=device, dtype=torch.float32)
        geometry = self.geometry
        num_frames = geometry.num_frames(audio.shape[1])
        per_window = min(self.frames_per_window, num_frames)
        windows = math.ceil(num_frames / per_window)
        length = geometry.window_samples(per_window)
        total = (windows - 1) * per_window * geometry.hop + length
        padded = F.pad(audio, (0, max(0, total - audio.shape[1])))[:, :total]
        batch = rearrange(padded.unfold(1, length, per_window * geometry.hop), "b w t -> (b w) t")
        with torch.no_grad():
            tokens = torch.cat(
                [self.method.embed_sequence({"audio": chunk}) for chunk in batch.split(self.max_windows)]
            )
        expected = per_window * geometry.tokens_per_frame
        if tokens.shape[1] != expected:
            raise RuntimeError(
                f"{type(self.method.encoder).__name__} gave {tokens.shape[1]} tokens for {length} samples, "
                f"not the {expected} its FrameGeometry {geometry} implies"
            )
        frames = reduce(
            tokens.float(), "(b w) (n k) d -> b (w n) d", "mean", w=windows, k=geometry.tokens_per_frame
        )[:, :num_frames]
        timestamps = geometry.timestamps(num_frames).to(device).expand(audio.shape[0], -1)
        return frames, timestamps
