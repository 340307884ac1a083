"""Random patch masking for masked prediction (BEATs MAM, MAE-style visible-only encoding).

Every sample masks the same number of patches, so the visible patches of a batch stack into one
`[B, K, D]` tensor with no padding and the encoder runs on the K visible patches only.
"""

from __future__ import annotations

import torch
from torch import Tensor


def num_masked_patches(num_patches: int, mask_ratio: float) -> int:
    """Patches M masked out of N: `round(mask_ratio * N)`, checked to leave 1 <= M <= N - 1."""
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio!r}")
    num_masked = round(mask_ratio * num_patches)
    if not 1 <= num_masked <= num_patches - 1:
        raise ValueError(
            f"mask_ratio={mask_ratio} of {num_patches} patches masks {num_masked}; at least one patch must "
            "be masked and one visible: use longer clips or a different mask_ratio"
        )
    return num_masked


def random_patch_mask(
    batch: int,
    num_patches: int,
    mask_ratio: float = 0.75,
    generator: torch.Generator | None = None,
    padding_mask: Tensor | None = None,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Mask `M = round(mask_ratio * N)` patches of each sample uniformly at random (a fresh draw per sample).

    Padded patches (`padding_mask` True) are masked first: they rank after every real patch, so the
    K = N - M visible patches are real audio whenever a sample has at least K real patches, and any
    padded patches left over (a sample with fewer than K real patches) stay visible, where the encoder's
    padding mask hides them. Padded positions also carry no label, so a loss over the masked positions
    must exclude them (`mask & ~padding_mask`).

    Args:
        batch: B.
        num_patches: N.
        mask_ratio: fraction of the N patches to mask, in (0, 1).
        generator: random source (its device is used); the global RNG when None.
        padding_mask: optional bool `[B, N]`, True at padded patches.
        device: where the outputs live (default: the padding mask's, else the generator's, else CPU).
    Returns:
        `keep_index` int64 `[B, K]` and `mask_index` int64 `[B, M]`, each sorted ascending and together a
        partition of `0..N-1`, and `mask` bool `[B, N]`, True at the masked patches.
    """
    num_masked = num_masked_patches(num_patches, mask_ratio)
    if padding_mask is not None and (
        padding_mask.shape != (batch, num_patches) or padding_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"padding_mask must be a bool tensor [B={batch}, N={num_patches}]; got {padding_mask.dtype} "
            f"{tuple(padding_mask.shape)}"
        )
    if device is None:
        device = padding_mask.device if padding_mask is not None else generator.device if generator else "cpu"
    noise_device = generator.device if generator is not None else device
    noise = torch.rand(batch, num_patches, generator=generator, device=noise_device).to(device)
    if padding_mask is not None:
        noise = noise + padding_mask.to(device)
    order = noise.argsort(dim=1)
    keep_index = order[:, : num_patches - num_masked].sort(dim=1).values
    mask_index = order[:, num_patches - num_masked :].sort(dim=1).values
    mask = torch.zeros(batch, num_patches, dtype=torch.bool, device=device).scatter(1, mask_index, True)
    return keep_index, mask_index, mask


def kept_positions(mask: Tensor) -> Tensor:
    """The ascending positions where `mask` (bool `[B, N]`, True = masked) is False: int64 `[B, K]`.

    The visible-only encoders of data2vec 2.0 gather these. Every row must keep the same K (the masks of
    `block_mask_1d`, `inverse_block_mask_2d`, `span_mask` with `require_same_masks` do).
    """
    if mask.dim() != 2 or mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor [B, N]; got {mask.dtype} {tuple(mask.shape)}")
    kept = (~mask).sum(dim=1)
    if not bool((kept == kept[0]).all()):
        raise ValueError(
            "kept_positions needs the same number of kept positions in every row, got "
            f"{sorted(set(kept.tolist()))}: draw the mask with require_same_masks"
        )
    return (~mask).nonzero()[:, 1].reshape(mask.shape[0], -1)


def random_mask(
    rows: int,
    length: int,
    mask_prob: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """MAE-style mask `[rows, length]` (True = masked): int(length (1 - mask_prob)) tokens kept per row,
    uniformly at random (data2vec 2.0 text)."""
    num_keep = int(length * (1.0 - mask_prob))
    if not 1 <= num_keep < length:
        raise ValueError(
            f"masking.mask_prob={mask_prob} keeps {num_keep} of {length} tokens; need 1 to {length - 1}"
        )
    order = torch.rand(rows, length, generator=generator, device=device).argsort(dim=1)
    mask = torch.ones(rows, length, dtype=torch.bool, device=device)
    return mask.scatter(1, order[:, :num_keep], False)
