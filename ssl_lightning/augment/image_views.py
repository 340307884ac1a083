"""`ImageViews`: SimCLR's random image views, made batched on device, optionally with Randomized Quantization.

One view of every image of a batch `[B, C, H, W]` in [0, 1]: random resized crop + horizontal flip
(one `F.grid_sample` with a per-sample affine map), brightness/contrast jitter, then, when `rq_bins`
is set, Randomized Quantization per (sample, RGB channel) (Wu et al., 2023: the "SimCLR + RQ"
setting). A view maker of the two-view methods (`ssl_lightning.methods.two_view`): class attribute
`domain`, `forward(x, generator) -> one random view`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.augment.randomized_quantization import RandomizedQuantization

ASPECT_RATIO = (3 / 4, 4 / 3)
"""Random resized crop aspect-ratio range (torchvision's default)."""
JITTER = 0.4
"""Brightness and contrast factors are drawn from [1 - JITTER, 1 + JITTER] (SimCLR's strength 0.5 x 0.8)."""


def _uniform(
    low: float, high: float, batch: int, images: Tensor, generator: torch.Generator | None
) -> Tensor:
    """`batch` uniform draws in [low, high) on the images' device (drawn on the generator's device)."""
    device = generator.device if generator is not None else images.device
    draws = torch.rand(batch, generator=generator, device=device, dtype=torch.float32)
    return (low + (high - low) * draws).to(images.device)


def random_resized_crop_flip(
    images: Tensor, scale: tuple[float, float], generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample random resized crop (area fraction in `scale`, aspect ratio 3/4-4/3) and horizontal
    flip with probability 1/2, resampled bilinearly to the input size: `[B, C, H, W]` -> same shape."""
    batch = images.shape[0]
    area = _uniform(scale[0], scale[1], batch, images, generator)
    log_ratio = _uniform(math.log(ASPECT_RATIO[0]), math.log(ASPECT_RATIO[1]), batch, images, generator)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    center_x = (1 - width) * _uniform(-1.0, 1.0, batch, images, generator)
    center_y = (1 - height) * _uniform(-1.0, 1.0, batch, images, generator)
    flip = torch.where(_uniform(0.0, 1.0, batch, images, generator) < 0.5, -1.0, 1.0)
    zero = torch.zeros_like(width)
    theta = torch.stack(
        [torch.stack([width * flip, zero, center_x], 1), torch.stack([zero, height, center_y], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(
    images: Tensor, strength: float = JITTER, generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample brightness then contrast factors in [1 - strength, 1 + strength], clamped to [0, 1]:
    `[B, C, H, W]` -> same shape. Contrast blends with the sample's mean intensity."""
    batch = images.shape[0]
    brightness = _uniform(1 - strength, 1 + strength, batch, images, generator).view(-1, 1, 1, 1)
    contrast = _uniform(1 - strength, 1 + strength, batch, images, generator).view(-1, 1, 1, 1)
    bright = (images * brightness).clamp(0.0, 1.0)
    mean = bright.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + contrast * (bright - mean)).clamp(0.0, 1.0)


class ImageViews(nn.Module):
    """One random view of every image: crop + flip, colour jitter, then RQ when configured.

    Crop, flip and jitter apply in every mode (a validation loss draws them from a seeded
    generator); RQ only in training mode, as `RandomizedQuantization` itself.

    Args:
        crop_scale: area fraction range (low, high) of the random resized crop, 0 < low <= high <= 1.
        jitter: brightness/contrast strength (factors in [1 - jitter, 1 + jitter]), in [0, 1].
        rq_bins: Randomized Quantization bins per channel (None: no RQ); the RQ paper uses 5-15.
        rq_p: probability of applying RQ to a view.
    """

    domain = "image"

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        jitter: float = JITTER,
        rq_bins: int | None = None,
        rq_p: float = 1.0,
    ) -> None:
        super().__init__()
        if not (len(crop_scale) == 2 and 0 < crop_scale[0] <= crop_scale[1] <= 1):
            raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale!r}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {jitter}")
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.jitter = float(jitter)
        self.rq = None if rq_bins is None else RandomizedQuantization(num_bins=rq_bins, p=rq_p, channel_dim=1)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images `[B, C, H, W]` in [0, 1] -> one random view of each, same shape."""
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(
                f"ImageViews expects float images [B, C, H, W] in [0, 1]; got dtype {x.dtype}, "
                f"shape {tuple(x.shape)}"
            )
        view = random_resized_crop_flip(x, self.crop_scale, generator)
        view = color_jitter(view, self.jitter, generator)
        return view if self.rq is None else self.rq(view, generator)

    def extra_repr(self) -> str:
        return f"domain={self.domain!r}, crop_scale={self.crop_scale}, jitter={self.jitter}"
