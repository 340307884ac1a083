"""2-D block masks on a patch grid: BEiT's (data2vec 1.0 vision), data2vec 2.0's inverse block mask (images).

Every draw comes from one `torch.Generator`, batched over the rows (no Python loop over the batch), so a
resumed run redraws the same masks. Masks are bool `[B, H*W]` in row-major patch order, True = masked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ssl_lightning.nn.span_masking import draw_device, randint, resample_to_count, uniform

BEIT_ATTEMPTS = 10  # tries per block before a row gives up (BEiT `MaskingGenerator._mask`)


def _check_grid(batch: int, height: int, width: int) -> None:
    if batch < 1 or height < 1 or width < 1:
        raise ValueError(f"need batch, height and width >= 1, got {batch}, {height}, {width}")


def beit_block_mask(
    batch: int,
    height: int,
    width: int,
    num_masking_patches: int,
    min_num_patches: int = 16,
    max_num_patches: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """BEiT's block-wise masking (`beit/masking_generator.py: MaskingGenerator`), data2vec 1.0 vision.

    Each row adds rectangles until `num_masking_patches` are masked or a block makes no progress. A block
    gets up to 10 attempts: area ~ U(`min_num_patches`, budget) with budget = min(patches still to mask,
    `max_num_patches`), aspect ratio log-uniform in [`min_aspect`, `max_aspect`] (default 1 / min_aspect),
    h = round(sqrt(area * aspect)), w = round(sqrt(area / aspect)), kept only when h < H and w < W, top-left
    corner uniform; it is placed when it adds between 1 and budget new patches. A row never exceeds
    `num_masking_patches` but may stop below it. data2vec 1.0 vision: 14x14, 120 patches (~60%),
    min 16 per block, max 196.

    Returns:
        bool `[B, H*W]`, True = masked.
    """
    _check_grid(batch, height, width)
    if not 0 <= num_masking_patches <= height * width or min_num_patches < 0:
        raise ValueError(
            f"need 0 <= num_masking_patches <= {height * width} and min_num_patches >= 0, got "
            f"{num_masking_patches}, {min_num_patches}"
        )
    if not 0.0 < min_aspect <= (max_aspect or 1 / min_aspect):
        raise ValueError(f"need 0 < min_aspect <= max_aspect, got {min_aspect}, {max_aspect}")
    device = torch.device(device) if device is not None else draw_device(generator, None)
    max_block = num_masking_patches if max_num_patches is None else max_num_patches
    log_low, log_high = math.log(min_aspect), math.log(max_aspect or 1 / min_aspect)
    rows = torch.arange(height, device=device)[None, :, None]
    cols = torch.arange(width, device=device)[None, None, :]
    mask = torch.zeros(batch, height, width, dtype=torch.bool, device=device)
    count = torch.zeros(batch, dtype=torch.long, device=device)
    active = count < num_masking_patches
    while active.any():
        budget = (num_masking_patches - count).clamp_max(max_block)
        placed = torch.zeros_like(active)
        for _ in range(BEIT_ATTEMPTS):
            trying = active & ~placed
            if not trying.any():
                break
            u = uniform((batch, 4), generator, device)
            area = min_num_patches + (budget - min_num_patches) * u[:, 0]
            aspect = torch.exp(log_low + (log_high - log_low) * u[:, 1])
            h = torch.sqrt(area * aspect).round().long()
            w = torch.sqrt(area / aspect).round().long()
            top = (u[:, 2] * (height - h + 1)).floor().long()
            left = (u[:, 3] * (width - w + 1)).floor().long()
            block = (
                (rows >= top[:, None, None])
                & (rows < (top + h)[:, None, None])
                & (cols >= left[:, None, None])
                & (cols < (left + w)[:, None, None])
            )
            new = (block & ~mask).sum(dim=(1, 2))
            ok = trying & (h < height) & (w < width) & (new > 0) & (new <= budget)
            mask |= block & ok[:, None, None]
            count += torch.where(ok, new, 0)
            placed |= ok
        active &= placed & (count < num_masking_patches)
    return mask.reshape(batch, height * width)


def inverse_block_mask_2d(
    batch: int,
    height: int,
    width: int,
    mask_prob: float = 0.8,
    mask_length: int = 3,
    mask_prob_adjust: float = 0.07,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """data2vec 2.0 image masking: fairseq `compute_block_mask_2d` with inverse_mask and require_same_masks.

    Blocks mark the KEPT patches: with L = H*W and keep share q = 1 - `mask_prob`,
    `int(L * ((q + mask_prob_adjust) / mask_length**2))` centres are drawn uniformly with replacement,
    each marking the `mask_length` x `mask_length` square around it (offsets from -mask_length // 2,
    clamped at the borders); random marked patches are then removed, or unmarked ones added, until every
    row keeps exactly `int(L * q)`; the rest is masked. 14x14 with the defaults (the 2.0 image recipe):
    5 centres, 39 kept and 157 masked per row.

    Returns:
        bool `[B, H*W]`, True = masked.
    """
    _check_grid(batch, height, width)
    if not 0.0 <= mask_prob <= 1.0 or mask_length < 1:
        raise ValueError(f"need 0 <= mask_prob <= 1 and mask_length >= 1, got {mask_prob!r}, {mask_length}")
    device = torch.device(device) if device is not None else draw_device(generator, None)
    num_patches = height * width
    keep_prob = 1 - mask_prob
    num_centres = int(num_patches * ((keep_prob + mask_prob_adjust) / mask_length**2))
    centres = randint(num_patches, (batch, num_centres), generator, device)
    offsets = torch.arange(mask_length, device=device) - mask_length // 2
    block_rows = (centres // width)[:, :, None, None] + offsets[:, None]
    block_cols = (centres % width)[:, :, None, None] + offsets[None, :]
    marked = block_rows.clamp(0, height - 1) * width + block_cols.clamp(0, width - 1)
    kept = torch.zeros(batch, num_patches, dtype=torch.bool, device=device)
    kept = kept.scatter(1, marked.reshape(batch, -1), True)
    return ~resample_to_count(kept, int(num_patches * keep_prob), generator)
