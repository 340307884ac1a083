"""Per-sample colour operations on image batches `[B, C, H, W]` in [0, 1], vectorised over the batch.

Every op takes one factor per sample (`[B]`) and follows the float-image formulas of torchvision's
`transforms.v2.functional` (`adjust_brightness`, `adjust_contrast`, `adjust_saturation`, `adjust_hue`,
`rgb_to_grayscale`), so a batch gives the per-image torchvision results:
    brightness  factor * x                                       clamped to [0, 1]
    contrast    factor * x + (1 - factor) * mean luminance       clamped
    saturation  factor * x + (1 - factor) * luminance image      clamped
    hue         the HSV hue turned by `shift` (in turns), saturation and value kept
C is 3 (RGB) or 1 (one luminance channel: saturation, hue and grayscale are then the identity, as in
torchvision).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

LUMA = (0.2989, 0.587, 0.114)
"""Luminance weights of R, G, B: torchvision's tensor `rgb_to_grayscale` (ITU-R 601-2 has 0.299)."""
HUE_CHANNEL_OFFSETS = (5.0, 3.0, 1.0)
"""Sextant offsets n of R, G, B in the closed-form HSV -> RGB map (k = (n + 6 h) mod 6)."""


def check_channels(images: Tensor) -> None:
    """Raise unless `images` is a float batch `[B, C, H, W]` with C = 3 (RGB) or 1 (luminance)."""
    if images.dim() != 4 or images.shape[1] not in (1, 3) or not images.is_floating_point():
        raise ValueError(
            f"colour augmentations need float images [B, 3, H, W] (RGB) or [B, 1, H, W] in [0, 1]; got "
            f"dtype {images.dtype}, shape {tuple(images.shape)}. Convert other channel counts first."
        )


def _per_sample(factor: Tensor, images: Tensor) -> Tensor:
    """Factors `[B]` -> `[B, 1, 1, 1]` in the images' dtype and device, after checking the batch size."""
    if factor.shape != (images.shape[0],):
        raise ValueError(
            f"expected one factor per image, shape ({images.shape[0]},); got {tuple(factor.shape)}"
        )
    return rearrange(factor.to(device=images.device, dtype=images.dtype), "b -> b 1 1 1")


def _blend(images: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """`factor * images + (1 - factor) * other`, clamped to [0, 1]; factor `[B, 1, 1, 1]`."""
    return (factor * images + (1 - factor) * other).clamp(0.0, 1.0)


def luminance(images: Tensor) -> Tensor:
    """Luminance (weights `LUMA`) of RGB images `[B, 3, H, W]` -> `[B, 1, H, W]` (C = 1: the input)."""
    check_channels(images)
    if images.shape[1] == 1:
        return images
    weights = rearrange(images.new_tensor(LUMA), "c -> 1 c 1 1")
    return (images * weights).sum(dim=1, keepdim=True)


def grayscale(images: Tensor) -> Tensor:
    """Images `[B, C, H, W]` -> their luminance repeated over the C channels, same shape."""
    return luminance(images).expand_as(images)


def adjust_brightness(images: Tensor, factor: Tensor) -> Tensor:
    """Scale images `[B, C, H, W]` by per-sample factors `[B]` (>= 0), clamped to [0, 1]."""
    check_channels(images)
    return (images * _per_sample(factor, images)).clamp(0.0, 1.0)


def adjust_contrast(images: Tensor, factor: Tensor) -> Tensor:
    """Blend images `[B, C, H, W]` with their mean luminance by per-sample factors `[B]` (>= 0)."""
    mean = luminance(images).mean(dim=(1, 2, 3), keepdim=True)
    return _blend(images, mean, _per_sample(factor, images))


def adjust_saturation(images: Tensor, factor: Tensor) -> Tensor:
    """Blend images `[B, C, H, W]` with their luminance image by per-sample factors `[B]` (>= 0)."""
    return _blend(images, luminance(images), _per_sample(factor, images))


def adjust_hue(images: Tensor, shift: Tensor) -> Tensor:
    """Turn the HSV hue of RGB images `[B, 3, H, W]` by per-sample `shift` `[B]` in turns (torchvision
    takes [-0.5, 0.5]; hue is periodic, so any shift is valid), keeping value (max) and chroma (max - min).

    RGB -> hue in sextants h6 in [0, 6) from whichever channel is the maximum (R, then G, then B on ties);
    back with k_n = (n + h6) mod 6 per channel n in (5, 3, 1): out_n = max - chroma * clip(min(k_n,
    4 - k_n), 0, 1), the closed form of the HSV -> RGB map.
    """
    check_channels(images)
    if images.shape[1] == 1:
        return images
    red, green, blue = images.unbind(dim=1)
    low, high = torch.aminmax(images, dim=1)
    chroma = high - low
    safe_chroma = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    sextant = torch.where(
        high == red,
        (green - blue) / safe_chroma,
        torch.where(high == green, (blue - red) / safe_chroma + 2, (red - green) / safe_chroma + 4),
    )
    turned = rearrange(sextant, "b h w -> b 1 h w") + 6 * _per_sample(shift, images)
    offsets = rearrange(images.new_tensor(HUE_CHANNEL_OFFSETS), "c -> 1 c 1 1")
    k = torch.remainder(offsets + turned, 6.0)
    ramp = torch.minimum(k, 4 - k).clamp(0.0, 1.0)
    return rearrange(high, "b h w -> b 1 h w") - rearrange(chroma, "b h w -> b 1 h w") * ramp
