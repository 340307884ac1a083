"""BYOL-A's Random Resize Crop of log-mel spectrograms (Niizumi et al., 2021), batched.

Per sample (official `nttcslab/byol-a: byol_a/augmentations.py: RandomResizeCrop`): the spectrogram
`[F mels, T frames]` is pasted at the centre of a zero canvas of `virtual_crop_scale` times its size
(offsets (canvas - size) // 2); a crop of h = int(U(freq_scale) * F) mels and w = int(U(time_scale) * T)
frames (clipped to [1, canvas]) at a uniform integer position of the canvas is resized back to
`[F, T]` bicubically with `align_corners=True`, taps clamped to the crop as `F.interpolate` does.

Bicubic resizing is separable, so each sample's resize is two matrix products,
`out = R_time @ spec @ R_freq^T`, with the interpolation matrices built for the whole batch at once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ssl_lightning.augment.sampling import uniform

CUBIC_A = -0.75
"""The cubic-convolution coefficient of PyTorch's bicubic interpolation (Keys' kernel)."""


def cubic_weights(t: Tensor) -> Tensor:
    """Keys cubic-convolution weights `[..., 4]` of the taps at -1, 0, 1, 2 around positions `t`."""

    def near(x: Tensor) -> Tensor:  # |x| <= 1
        return ((CUBIC_A + 2) * x - (CUBIC_A + 3)) * x * x + 1

    def far(x: Tensor) -> Tensor:  # 1 < |x| < 2
        return ((CUBIC_A * x - 5 * CUBIC_A) * x + 8 * CUBIC_A) * x - 4 * CUBIC_A

    return torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], dim=-1)


def resize_matrix(size: int, start: Tensor, length: Tensor, offset: int) -> Tensor:
    """Interpolation matrices `[B, size, size]` of one axis: output index o reads input index i with weight
    `M[b, o, i]`, for the crop `[start[b], start[b] + length[b])` (int64 `[B]`) of a zero canvas that holds
    the input at `[offset, offset + size)`, resized to `size` bicubically with `align_corners=True`."""
    device = start.device
    destination = torch.arange(size, device=device, dtype=torch.float32)
    scale = (length - 1).float() / (size - 1) if size > 1 else torch.zeros_like(length, dtype=torch.float32)
    source = scale[:, None] * destination  # [B, size], crop coordinates
    floor = source.floor()
    taps = floor.long()[..., None] + torch.arange(-1, 3, device=device)  # [B, size, 4]
    taps = torch.minimum(taps.clamp(min=0), (length - 1)[:, None, None])
    index = start[:, None, None] + taps - offset  # input index; outside [0, size) is the zero canvas
    inside = (index >= 0) & (index < size)
    weights = cubic_weights(source - floor) * inside
    matrix = torch.zeros(start.shape[0], size, size, device=device)
    return matrix.scatter_add_(2, index.clamp(0, size - 1), weights)


def _check_range(name: str, value: tuple[float, float], minimum: float) -> tuple[float, float]:
    if not (len(value) == 2 and minimum <= value[0] <= value[1]):
        raise ValueError(f"{name} must be (low, high) with {minimum} <= low <= high, got {value!r}")
    return float(value[0]), float(value[1])


class RandomResizeCrop(nn.Module):
    """Random resized crop of `spec[B, frames, mels]` -> same shape, drawn per sample, in every mode (a
    validation loss draws it from a seeded generator).

    Args:
        virtual_crop_scale: canvas size as (mel, frame) multiples of the input (official (1.0, 1.5)).
        freq_scale: range of the crop's mel count as a multiple of the input's (official (0.6, 1.5)).
        time_scale: range of the crop's frame count as a multiple of the input's (official (0.6, 1.5)).
    """

    def __init__(
        self,
        virtual_crop_scale: tuple[float, float] = (1.0, 1.5),
        freq_scale: tuple[float, float] = (0.6, 1.5),
        time_scale: tuple[float, float] = (0.6, 1.5),
    ) -> None:
        super().__init__()
        self.virtual_crop_scale = _check_range("virtual_crop_scale", virtual_crop_scale, 1.0)
        self.freq_scale = _check_range("freq_scale", freq_scale, 0.0)
        self.time_scale = _check_range("time_scale", time_scale, 0.0)

    def forward(self, spec: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """`[B, frames, mels]` -> `[B, frames, mels]`: every sample cropped and resized with its own draw."""
        if spec.dim() != 3:
            raise ValueError(f"RandomResizeCrop needs spec [B, frames, mels]; got shape {tuple(spec.shape)}")
        batch, frames, mels = spec.shape
        freq = self._crop_matrix(batch, mels, self.virtual_crop_scale[0], self.freq_scale, spec, generator)
        time = self._crop_matrix(batch, frames, self.virtual_crop_scale[1], self.time_scale, spec, generator)
        return time.to(spec.dtype) @ spec @ freq.to(spec.dtype).transpose(1, 2)

    @staticmethod
    def _crop_matrix(
        batch: int,
        size: int,
        virtual_scale: float,
        scale: tuple[float, float],
        spec: Tensor,
        generator: torch.Generator | None,
    ) -> Tensor:
        """Draw one axis' crop (length, then start) per sample -> `[B, size, size]` resize matrices."""
        canvas = int(size * virtual_scale)
        length = (uniform((batch,), spec.device, generator, *scale) * size).long().clamp(1, canvas)
        start = (uniform((batch,), spec.device, generator) * (canvas - length + 1)).long()
        start = torch.minimum(start, canvas - length)
        return resize_matrix(size, start, length, (canvas - size) // 2)

    def extra_repr(self) -> str:
        return (
            f"virtual_crop_scale={self.virtual_crop_scale}, freq_scale={self.freq_scale}, "
            f"time_scale={self.time_scale}"
        )
