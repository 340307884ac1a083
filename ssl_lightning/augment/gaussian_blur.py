"""Gaussian blur with a per-sample sigma, batched: separable depthwise convolutions over `[B, C, H, W]`.

Follows torchvision's `transforms.v2.functional.gaussian_blur` on float images: an odd-sized kernel with
taps exp(-x^2 / (2 sigma^2)) at x = -(K - 1)/2 ... (K - 1)/2, normalised to sum 1, the same sigma along
both axes, reflect padding. The kernel sizes of SimCLR (Chen et al. 2020, appendix A): 10% of the image
side, made odd (`blur_kernel_size`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

KERNEL_FRACTION = 0.1
"""SimCLR's blur kernel side as a fraction of the image side."""


def blur_kernel_size(side: int) -> int:
    """SimCLR's odd kernel size for an image side: radius (side // 10) // 2, size 2 radius + 1
    (224 -> 23, 96 -> 9, 32 -> 3; below 20 pixels 1, no blur)."""
    radius = int(side * KERNEL_FRACTION) // 2
    return 2 * radius + 1


def gaussian_kernels(sigma: Tensor, size: int) -> Tensor:
    """Normalised 1-D Gaussian kernels: per-sample `sigma` `[B]` (> 0), odd `size` -> `[B, size]`."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"Gaussian kernel size must be odd and positive, got {size}")
    taps = torch.arange(size, device=sigma.device, dtype=sigma.dtype) - (size - 1) / 2
    pdf = torch.exp(-0.5 * (taps / rearrange(sigma, "b -> b 1")) ** 2)
    return pdf / pdf.sum(dim=1, keepdim=True)


def gaussian_blur(images: Tensor, sigma: Tensor, kernel_size: tuple[int, int]) -> Tensor:
    """Blur every image of `[B, C, H, W]` with its own `sigma` `[B]`; `kernel_size` (along H, along W),
    odd, each at most twice the side minus one (reflect padding) -> same shape."""
    batch, channels, height, width = images.shape
    if sigma.shape != (batch,):
        raise ValueError(f"expected one sigma per image, shape ({batch},); got {tuple(sigma.shape)}")
    size_h, size_w = kernel_size
    if size_h // 2 >= height or size_w // 2 >= width:
        raise ValueError(
            f"blur kernel {kernel_size} too large for {height}x{width} images (reflect padding needs "
            f"kernel // 2 < side); use a smaller kernel"
        )
    sigma = sigma.to(device=images.device, dtype=images.dtype)
    kernel_h = repeat(gaussian_kernels(sigma, size_h), "b k -> (b c) 1 k 1", c=channels)
    kernel_w = repeat(gaussian_kernels(sigma, size_w), "b k -> (b c) 1 1 k", c=channels)
    planes = rearrange(images, "b c h w -> 1 (b c) h w")
    padded = F.pad(planes, (size_w // 2, size_w // 2, size_h // 2, size_h // 2), mode="reflect")
    blurred = F.conv2d(F.conv2d(padded, kernel_h, groups=batch * channels), kernel_w, groups=batch * channels)
    return rearrange(blurred, "1 (b c) h w -> b c h w", b=batch)
