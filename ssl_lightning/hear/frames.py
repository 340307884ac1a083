"""Frame embeddings of whole clips for the HEAR API: where each encoder frame sits in time, and windowed
encoding of audio of any length.

An encoder frame i covers the samples `[i * hop, i * hop + span)` (its centre `i * hop + span / 2`) and
holds `tokens_per_frame` consecutive tokens of the encoder's output, after `leading_tokens` that belong to
no time (a CLS token). `FrameGeometry` records this per encoder family (Kaldi fbank: 25 ms windows every
10 ms, 400 and 160 samples at 16 kHz):

- BEATs: 16 x 16 patches of fbank frames, time-major: hop 16 * 160 = 2560 samples (160 ms), span
  400 + 15 * 160 = 2800, 128 / 16 = 8 tokens per frame (the frequency patches of one time step).
- data2vec on spectrogram patches: BEATs' fbank and patches (the same hop, span and 8 tokens per frame,
  row-major over the (time, frequency) grid), after the CLS token; its image holds `num_frames` fbank
  frames, so one pass gives at most `num_frames / 16` frames, and always that many (the image is padded).
- data2vec audio: the conv feature extractor's total stride (320 = 20 ms for the standard stack) and
  receptive field (400), one token per frame.
- BYOL-A: log-mel hop 160 (centred 1024-sample windows) pooled 8x in time: hop 1280 (80 ms), span
  1120, one token per frame.
- Slowfast NFNet: a token per fast-pathway time step, 4 fbank frames (time stride 4 of its stem): hop
  640 (40 ms), span 400 + 3 * 160 = 880. The slow features appended to a token are those of its 16-frame
  slow step (each repeated over 4 tokens), coarser than the frame; per-pass standardisation of the
  log-mel makes a frame depend on its whole window, as attention does in the Transformers.

Image and text encoders have no time axis, so the HEAR API refuses them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import Tensor, nn

from ssl_lightning.audio import KaldiFbank
from ssl_lightning.backbones import (
    BEATsEncoder,
    ByolAEncoder,
    Data2VecAudioEncoder,
    Data2VecSpectrogramEncoder,
    Data2VecTextEncoder,
    Data2VecVisionEncoder,
    SlowfastNFNet,
    TimmImageEncoder,
)
from ssl_lightning.methods import SSLMethod

SAMPLE_RATE = 16000
"""The rate data2vec audio takes."""
SUPPORTED = "BEATsEncoder, Data2VecSpectrogramEncoder, Data2VecAudioEncoder, ByolAEncoder and SlowfastNFNet"
NOT_AUDIO = (TimmImageEncoder, Data2VecVisionEncoder, Data2VecTextEncoder)
"""Encoders of images or token ids: their tokens have no time (checked after Data2VecSpectrogramEncoder,
a Data2VecVisionEncoder on fbank images)."""


@dataclass(frozen=True)
class FrameGeometry:
    """Where an encoder's frames lie: frame i covers samples `[i * hop, i * hop + span)` at
    `sample_rate`, and is `tokens_per_frame` consecutive output tokens after the first `leading_tokens`.
    `max_frames`: an encoder of fixed-size input gives at most, and always, this many frames a pass."""

    sample_rate: int
    hop: int
    span: int
    tokens_per_frame: int = 1
    leading_tokens: int = 0
    max_frames: int | None = None

    def num_frames(self, num_samples: int) -> int:
        """Frames whose centre lies within `num_samples` (at least one, so short audio has a frame)."""
        return max(1, (2 * num_samples - self.span) // (2 * self.hop) + 1)

    def timestamps(self, num_frames: int) -> Tensor:
        """Frame centres in milliseconds, float32 `[num_frames]` (each from its index: no drift)."""
        index = torch.arange(num_frames, dtype=torch.float64)
        return ((index * self.hop + self.span / 2) * 1000 / self.sample_rate).float()

    def window_samples(self, num_frames: int) -> int:
        """Samples an encoder pass needs to output `num_frames` frames."""
        return (num_frames - 1) * self.hop + self.span

    def output_tokens(self, num_frames: int) -> int:
        """Tokens a pass over `window_samples(num_frames)` samples gives (the padded image's with
        `max_frames`)."""
        return self.leading_tokens + self.tokens_per_frame * (self.max_frames or num_frames)


def fbank_geometry(fbank: KaldiFbank, frames: int, tokens_per_frame: int = 1, **fields: int) -> FrameGeometry:
    """Frames of `frames` consecutive Kaldi fbank frames (Kaldi's window and shift, truncated to samples)."""
    rate = fbank.sample_rate
    shift, window = int(rate * fbank.frame_shift / 1000), int(rate * fbank.frame_length / 1000)
    return FrameGeometry(rate, frames * shift, window + (frames - 1) * shift, tokens_per_frame, **fields)


def frame_geometry(encoder: nn.Module) -> FrameGeometry:
    """The `FrameGeometry` of an encoder (a compiled one is unwrapped).

    Raises:
        TypeError: the encoder has no time axis (images, text) or no known frame layout (the message lists
            the encoder families that have one).
    """
    encoder = getattr(encoder, "_orig_mod", encoder)
    if isinstance(encoder, BEATsEncoder):
        patch = encoder.patch_size
        return fbank_geometry(encoder.fbank, patch, encoder.fbank.num_mel_bins // patch)
    if isinstance(encoder, Data2VecSpectrogramEncoder):
        config = encoder.config
        patch = config.patch_size
        return fbank_geometry(
            encoder.fbank,
            patch,
            encoder.fbank.num_mel_bins // patch,
            leading_tokens=1,
            max_frames=config.num_frames // patch,
        )
    if isinstance(encoder, Data2VecAudioEncoder):
        return FrameGeometry(SAMPLE_RATE, math.prod(encoder.config.conv_stride), encoder.min_samples)
    if isinstance(encoder, ByolAEncoder):
        hop = encoder.hop_length * encoder.downsample
        sample_rate = int(encoder.frontend.mel_spectrogram.sample_rate)
        return FrameGeometry(sample_rate, hop, hop - encoder.hop_length)
    if isinstance(encoder, SlowfastNFNet):
        return fbank_geometry(encoder.frontend, encoder.time_stride)
    name = type(encoder).__name__
    if isinstance(encoder, NOT_AUDIO):
        raise TypeError(
            f"{name} encodes images or token ids, not audio: its tokens have no time for HEAR timestamps; "
            f"use a checkpoint of a method with an audio encoder ({SUPPORTED})"
        )
    raise TypeError(
        f"the HEAR API knows the frame layout of {SUPPORTED}, not {name}; use a checkpoint of a method with "
        "one of those encoders, or add its FrameGeometry to ssl_lightning/hear/frames.py"
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
            length), cut to the `max_frames` of an encoder of fixed-size input.
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
        frames = (window - self.geometry.span) // self.geometry.hop + 1
        self.frames_per_window = min(frames, self.geometry.max_frames or frames)
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
        expected = geometry.output_tokens(per_window)
        if tokens.shape[1] != expected:
            raise RuntimeError(
                f"{type(self.method.encoder).__name__} gave {tokens.shape[1]} tokens for {length} samples, "
                f"not the {expected} its FrameGeometry {geometry} implies"
            )
        start = geometry.leading_tokens
        frames = reduce(
            tokens[:, start : start + per_window * geometry.tokens_per_frame].float(),
            "(b w) (n k) d -> b (w n) d",
            "mean",
            w=windows,
            k=geometry.tokens_per_frame,
        )[:, :num_frames]
        timestamps = geometry.timestamps(num_frames).to(device).expand(audio.shape[0], -1)
        return frames, timestamps
