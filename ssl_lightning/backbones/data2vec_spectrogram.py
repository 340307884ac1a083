"""data2vec on audio spectrogram patches (AudioSet-style, as EAT and Audio-MAE pre-train with data2vec 2.0
and MAE): the data2vec vision ViT over the BEATs fbank seen as a one-channel image.

waveform `[B, T]` (16 kHz, [-1, 1]) -> 128-bin Kaldi fbank exactly as BEATs computes it (`KaldiFbank`:
x 32768, 25 ms povey frames every 10 ms, `(fbank - 15.41663) / (2 * 6.55582)`), `[B, frames, 128]` -> the
first `num_frames` frames, zero frames appended to shorter clips -> image `[B, 1, num_frames, 128]` (time =
rows, frequency = cols) -> the vision encoder's 16 x 16 patch embedding, grid `(num_frames / 16, 8)` = (64, 8)
for AudioSet's 10 s (1024 frames, EAT's and Audio-MAE's 1024 x 128 input), and its Transformer.

The encoder is a `Data2VecVisionEncoder` (same modules, state dict and hooks; `modality = "vision"` because
its masks are 2-D patch-grid masks), so its Hugging Face directory is a data2vec-vision model with
`num_channels` 1 and `image_size` (num_frames, 128), which transformers runs on `spectrogram(waveform)` as
`pixel_values`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ssl_lightning.audio import KaldiFbank
from ssl_lightning.backbones.beats import check_audio_batch
from ssl_lightning.backbones.data2vec_vision import Data2VecVisionConfig, Data2VecVisionEncoder

MEL_BINS = 128


@dataclass
class Data2VecSpectrogramConfig(Data2VecVisionConfig):
    """`Data2VecVisionConfig` for the fbank image: `num_frames` fbank frames (10 ms each) x 128 mel bins, one
    channel, no pixel statistics (the fbank is normalised with BEATs' AudioSet statistics).

    `image_size` follows from `num_frames` (leave it unset; a given one must be `(num_frames, 128)`), so a
    YAML config sets `num_frames` and the architecture fields only. `num_frames` and 128 must be multiples of
    `patch_size`, so that every frame and mel bin lands in a patch.
    """

    image_size: int | tuple[int, int] | None = None
    num_channels: int = 1
    num_frames: int = 1024

    def __post_init__(self) -> None:
        name = type(self).__name__
        frames = self.num_frames
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(
                f"{name}.num_frames must be a positive int (1024 for 10 s clips), got {frames!r}"
            )
        shape = (frames, MEL_BINS)
        if self.image_size is None:
            self.image_size = shape
        super().__post_init__()
        if self.image_shape != shape:
            raise ValueError(
                f"{name}.image_size={self.image_size} must be (num_frames, {MEL_BINS}) = {shape}, the fbank "
                "image; leave image_size unset"
            )
        if self.num_channels != 1:
            raise ValueError(f"{name}.num_channels must be 1 (one fbank image), got {self.num_channels}")
        if self.pixel_mean is not None:
            raise ValueError(
                f"{name}: the fbank is normalised already (BEATs' statistics); set pixel_mean and pixel_std "
                "to None"
            )
        if frames % self.patch_size or MEL_BINS % self.patch_size:
            raise ValueError(
                f"{name}: num_frames={frames} and the {MEL_BINS} mel bins must be multiples of "
                f"patch_size={self.patch_size}; pick num_frames = {frames - frames % self.patch_size} or "
                f"{frames + (-frames) % self.patch_size}"
            )

    @classmethod
    def base(cls) -> Data2VecSpectrogramConfig:
        """`Data2VecVisionConfig.base()` (ViT-B/16 in the SSL-pretraining layout: mask token, one shared
        relative position bias, final LayerNorm, its training settings) on the 1024 x 128 fbank image of
        10 s clips, one channel, no pixel statistics. `large()` is ViT-L/16 on the same image."""
        vision = dataclasses.asdict(Data2VecVisionConfig.base())
        return cls(**{**vision, "image_size": None, "num_channels": 1, "pixel_mean": None, "pixel_std": None})


class Data2VecSpectrogramEncoder(Data2VecVisionEncoder):
    """data2vec vision ViT on the BEATs fbank image of a waveform: `forward(waveform [B, T], padding_mask
    [B, T] | None) -> (features [B, 1 + N, D], None)`, CLS first, N = (num_frames / 16) * 8 patches in
    row-major (time-major) order.

    Clip length: the image holds `num_frames` frames. Longer clips are cropped to their start (the first
    `num_frames` frames, as EAT's data loader does; random crops are the datamodule's job), shorter ones get
    zero frames appended. Padded samples (`padding_mask` True) turn every frame that holds one into zeros as
    well, so a clip padded in a batch gives the features it gives alone. Padded frames are data (zeros after
    normalisation, i.e. AudioSet's mean level): every patch is attended to and no token padding mask is
    returned, as in Audio-MAE and EAT, whose fixed-size images pad with constant frames (they pad before the
    normalisation, at `-mean / (2 std)` of their statistics).

    Hugging Face: `to_huggingface` writes a data2vec-vision model (`num_channels` 1, `image_size`
    (num_frames, 128), written transposed as `Data2VecVisionEncoder` explains); transformers takes
    `encoder.spectrogram(waveform)` as its `pixel_values`. `pool` is the mean patch token.

    Args:
        config: the architecture (default: transformers' defaults on the 1024 x 128 image;
            `Data2VecSpectrogramConfig.base()` for pre-training).
    """

    config_class = Data2VecSpectrogramConfig

    def __init__(self, config: Data2VecSpectrogramConfig | None = None) -> None:
        super().__init__(config if config is not None else Data2VecSpectrogramConfig())
        self.fbank = KaldiFbank(num_mel_bins=MEL_BINS)

    def _padded_frames(self, padding_mask: Tensor) -> Tensor:
        """bool `[B, frames]`: True where a frame holds a padded sample."""
        fbank = self.fbank
        window = int(fbank.sample_rate * fbank.frame_length / 1000)
        shift = int(fbank.sample_rate * fbank.frame_shift / 1000)
        return F.max_pool1d(padding_mask[:, None].float(), window, shift)[:, 0] > 0

    def spectrogram(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """The encoder's input image: `waveform [B, T]` in [-1, 1] (+ bool `padding_mask [B, T]`) ->
        normalised fbank `[B, 1, num_frames, 128]` (float32; frames past the clip or holding padding: 0)."""
        check_audio_batch(waveform, padding_mask)
        with torch.autocast(waveform.device.type, enabled=False):
            fbank = self.fbank(waveform.float())
        if padding_mask is not None:
            fbank = fbank.masked_fill(self._padded_frames(padding_mask)[..., None], 0.0)
        frames = self.config.num_frames
        fbank = F.pad(fbank[:, :frames], (0, 0, 0, max(frames - fbank.shape[1], 0)))
        return fbank[:, None]

    def embed_tokens(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """`waveform [B, T]` (+ `padding_mask [B, T]`) -> (patch tokens `[B, N, D]` of `spectrogram`, None):
        padded frames are data, so there is no token padding mask."""
        return super().embed_tokens(self.spectrogram(x, padding_mask))

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """`waveform [B, T]` (+ `padding_mask [B, T]`) -> (features `[B, 1 + N, D]`, CLS first; None): padded
        and appended frames are zeros after normalisation and attended to as data (Audio-MAE, EAT)."""
        return super().forward(x, padding_mask)
