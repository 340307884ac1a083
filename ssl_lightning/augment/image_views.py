"""`ImageViews`: SimCLR's random image views, made batched on device, optionally with Randomized Quantization.

One view of every image of a batch `[B, C, H, W]` in [0, 1], SimCLR's augmentation (Chen et al. 2020,
appendix A) in its order: random resized crop + horizontal flip (one `F.grid_sample` with a per-sample
affine map, bilinear; flip probability `flip_p`, default 1/2), colour jitter with probability 0.8
(brightness, contrast, saturation, hue in a random order per sample, as torchvision's `ColorJitter`),
random grayscale with probability 0.2, optionally Gaussian blur (SimCLR's ImageNet views: probability
0.5, sigma in [0.1, 2], kernel 10% of the side), then, when `rq_bins` is set, Randomized Quantization
per (sample, RGB channel) (Wu et al., 2023). Every op can be switched off (probability 0), which gives
the RQ paper's "RRC + RQ" image setting. Every draw is per sample, from the optional `torch.Generator`.
A view maker of the two-view methods (`ssl_lightning.methods.two_view`): class attribute `domain`,
`forward(x, generator) -> one random view`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.augment.color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    check_channels,
    grayscale,
)
from ssl_lightning.augment.gaussian_blur import blur_kernel_size, gaussian_blur
from ssl_lightning.augment.randomized_quantization import RandomizedQuantization

ASPECT_RATIO = (3 / 4, 4 / 3)
"""Random resized crop aspect-ratio range (torchvision's default)."""
JITTER = 0.4
"""Brightness, contrast and saturation factors are drawn from [1 - JITTER, 1 + JITTER]: SimCLR's 0.8 s at
colour strength s = 0.5, its CIFAR-10 setting and torchvision's ColorJitter(0.4, 0.4, 0.4, 0.1) of the
CIFAR SimCLR code that Contrastive Quant follows (Jiang et al. 2020, train_simCLR.py). ImageNet: s = 1."""
HUE_RATIO = 0.25
"""Default hue range as a fraction of the jitter strength: SimCLR's hue 0.2 s against 0.8 s."""
JITTER_P = 0.8
"""SimCLR's probability of applying the colour jitter to a view."""
GRAYSCALE_P = 0.2
"""SimCLR's probability of converting a view to grayscale."""
BLUR_P = 0.5
"""SimCLR's probability of blurring an ImageNet view (`ImageViews(blur_p=BLUR_P)`; CIFAR: no blur)."""
BLUR_SIGMA = (0.1, 2.0)
"""SimCLR's Gaussian blur sigma range, in pixels."""


def _rand(shape: tuple[int, ...], images: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform draws in [0, 1) of `shape` on the images' device (drawn on the generator's device)."""
    device = generator.device if generator is not None else images.device
    return torch.rand(shape, generator=generator, device=device, dtype=torch.float32).to(images.device)


def _uniform(
    low: float, high: float, batch: int, images: Tensor, generator: torch.Generator | None
) -> Tensor:
    """`batch` uniform draws in [low, high) on the images' device (drawn on the generator's device)."""
    return low + (high - low) * _rand((batch,), images, generator)


def _where_drawn(chosen: Tensor, changed: Tensor, images: Tensor) -> Tensor:
    """Per sample: `changed` where `chosen` `[B]` is true, else `images` (both `[B, C, H, W]`)."""
    return torch.where(rearrange(chosen, "b -> b 1 1 1"), changed, images)


def random_resized_crop_flip(
    images: Tensor,
    scale: tuple[float, float],
    generator: torch.Generator | None = None,
    flip_p: float = 0.5,
) -> Tensor:
    """Per-sample random resized crop (area fraction in `scale`, aspect ratio 3/4-4/3) and horizontal
    flip with probability `flip_p` (0: no flip and no flip draw), resampled bilinearly to the input
    size: `[B, C, H, W]` -> same shape."""
    batch = images.shape[0]
    area = _uniform(scale[0], scale[1], batch, images, generator)
    log_ratio = _uniform(math.log(ASPECT_RATIO[0]), math.log(ASPECT_RATIO[1]), batch, images, generator)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    center_x = (1 - width) * _uniform(-1.0, 1.0, batch, images, generator)
    center_y = (1 - height) * _uniform(-1.0, 1.0, batch, images, generator)
    flip = torch.ones_like(width)
    if flip_p > 0:
        flip = torch.where(_uniform(0.0, 1.0, batch, images, generator) < flip_p, -1.0, 1.0)
    zero = torch.zeros_like(width)
    theta = torch.stack(
        [torch.stack([width * flip, zero, center_x], 1), torch.stack([zero, height, center_y], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(
    images: Tensor,
    strength: float = JITTER,
    generator: torch.Generator | None = None,
    hue: float | None = None,
    p: float = 1.0,
) -> Tensor:
    """torchvision's `RandomApply([ColorJitter(strength, strength, strength, hue)], p)`, per sample and
    batched: `[B, C, H, W]` -> same shape, in [0, 1].

    Each sample draws brightness, contrast and saturation factors in [1 - strength, 1 + strength], a hue
    shift in [-hue, hue] (default `strength * HUE_RATIO`), whether it is jittered (probability `p`) and
    a random order of the four ops. Every step runs each op on the whole batch and keeps it for the
    samples whose order puts that op at that step (4 x 4 op passes; no host sync, no per-sample loop).
    Ops with a zero range are left out.
    """
    check_channels(images)
    batch = images.shape[0]
    hue = strength * HUE_RATIO if hue is None else hue
    ranges = [
        (adjust_brightness, 1 - strength, 1 + strength),
        (adjust_contrast, 1 - strength, 1 + strength),
        (adjust_saturation, 1 - strength, 1 + strength),
        (adjust_hue, -hue, hue),
    ]
    ops = [(op, _uniform(low, high, batch, images, generator)) for op, low, high in ranges if high > low]
    jittered = _uniform(0.0, 1.0, batch, images, generator) < p
    order = _rand((batch, len(ops)), images, generator).argsort(dim=1)
    for step in range(len(ops)):
        for index, (op, factor) in enumerate(ops):
            images = _where_drawn(jittered & (order[:, step] == index), op(images, factor), images)
    return images


def random_grayscale(images: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Each image of `[B, C, H, W]` replaced by its luminance in all C channels with probability `p`."""
    check_channels(images)
    chosen = _uniform(0.0, 1.0, images.shape[0], images, generator) < p
    return _where_drawn(chosen, grayscale(images), images)


def random_gaussian_blur(
    images: Tensor,
    p: float,
    sigma: tuple[float, float] = BLUR_SIGMA,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Each image of `[B, C, H, W]` blurred with probability `p`, with its own sigma drawn uniformly in
    `sigma`, by SimCLR's kernel (10% of each side, odd; `blur_kernel_size`) -> same shape."""
    batch, _, height, width = images.shape
    sigmas = _uniform(sigma[0], sigma[1], batch, images, generator)
    chosen = _uniform(0.0, 1.0, batch, images, generator) < p
    blurred = gaussian_blur(images, sigmas, (blur_kernel_size(height), blur_kernel_size(width)))
    return _where_drawn(chosen, blurred, images)


def _check_probability(name: str, value: float) -> float:
    """`value` as a float, or a ValueError naming the argument unless it is in [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} is a probability and must be in [0, 1], got {value}")
    return float(value)


class ImageViews(nn.Module):
    """One random view of every image: crop + flip, colour jitter, grayscale, blur, then RQ when configured.

    Crop, flip, jitter, grayscale and blur apply in every mode (a validation loss draws them from a
    seeded generator); RQ only in training mode, as `RandomizedQuantization` itself. An op whose
    probability is 0 is skipped (no draws). The defaults are SimCLR's CIFAR views at colour strength
    0.5 (Jiang et al.'s code, which Contrastive Quant follows); SimCLR's ImageNet views are
    `ImageViews(crop_scale=(0.08, 1.0), jitter=0.8, blur_p=0.5)`. The RQ paper's image setting
    "RRC + RQ" (random resized crop, then RQ, nothing else) is
    `ImageViews(crop_scale=(0.08, 1.0), flip_p=0, jitter_p=0, grayscale_p=0, rq_bins=8)`.

    Args:
        crop_scale: area fraction range (low, high) of the random resized crop, 0 < low <= high <= 1.
        jitter: brightness/contrast/saturation strength (factors in [1 - jitter, 1 + jitter]), in [0, 1]:
            SimCLR's 0.8 s for colour strength s.
        rq_bins: Randomized Quantization bins per channel (None: no RQ); the RQ paper uses 5-15.
        rq_p: probability of applying RQ to a view.
        hue: hue shift range in turns (shifts in [-hue, hue]), in [0, 0.5]; None: `jitter / 4` (SimCLR's
            0.2 s).
        jitter_p: probability of jittering a view (SimCLR: 0.8).
        grayscale_p: probability of converting a view to grayscale (SimCLR: 0.2).
        blur_p: probability of blurring a view (0: no blur, SimCLR's CIFAR views; 0.5 on ImageNet).
        blur_sigma: (low, high) range of the blur's sigma in pixels, 0 < low <= high (SimCLR: 0.1-2).
        flip_p: probability of flipping a view horizontally (SimCLR: 0.5; RRC + RQ: 0).
    """

    domain = "image"

    def __init__(
        self,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        jitter: float = JITTER,
        rq_bins: int | None = None,
        rq_p: float = 1.0,
        hue: float | None = None,
        jitter_p: float = JITTER_P,
        grayscale_p: float = GRAYSCALE_P,
        blur_p: float = 0.0,
        blur_sigma: tuple[float, float] = BLUR_SIGMA,
        flip_p: float = 0.5,
    ) -> None:
        super().__init__()
        if not (len(crop_scale) == 2 and 0 < crop_scale[0] <= crop_scale[1] <= 1):
            raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale!r}")
        if not 0.0 <= jitter <= 1.0:
            raise ValueError(f"jitter must be in [0, 1], got {jitter}")
        hue = jitter * HUE_RATIO if hue is None else hue
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5] (turns), got {hue}")
        if not (len(blur_sigma) == 2 and 0 < blur_sigma[0] <= blur_sigma[1]):
            raise ValueError(f"blur_sigma must be (low, high) with 0 < low <= high, got {blur_sigma!r}")
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.jitter = float(jitter)
        self.hue = float(hue)
        self.jitter_p = _check_probability("jitter_p", jitter_p)
        self.grayscale_p = _check_probability("grayscale_p", grayscale_p)
        self.blur_p = _check_probability("blur_p", blur_p)
        self.blur_sigma = (float(blur_sigma[0]), float(blur_sigma[1]))
        self.flip_p = _check_probability("flip_p", flip_p)
        self.rq = None if rq_bins is None else RandomizedQuantization(num_bins=rq_bins, p=rq_p, channel_dim=1)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images `[B, C, H, W]` in [0, 1] (C = 3, or 1) -> one random view of each, same shape."""
        if x.dim() != 4 or not x.is_floating_point():
            raise ValueError(
                f"ImageViews expects float images [B, C, H, W] in [0, 1]; got dtype {x.dtype}, "
                f"shape {tuple(x.shape)}"
            )
        view = random_resized_crop_flip(x, self.crop_scale, generator, self.flip_p)
        if self.jitter_p > 0:
            view = color_jitter(view, self.jitter, generator, hue=self.hue, p=self.jitter_p)
        if self.grayscale_p > 0:
            view = random_grayscale(view, self.grayscale_p, generator)
        if self.blur_p > 0:
            view = random_gaussian_blur(view, self.blur_p, self.blur_sigma, generator)
        return view if self.rq is None else self.rq(view, generator)

    def extra_repr(self) -> str:
        return (
            f"domain={self.domain!r}, crop_scale={self.crop_scale}, flip_p={self.flip_p}, "
            f"jitter={self.jitter}, hue={self.hue}, jitter_p={self.jitter_p}, "
            f"grayscale_p={self.grayscale_p}, blur_p={self.blur_p}, "
            f"blur_sigma={self.blur_sigma}"
        )
