"""2-D block masks: BEiT's block-wise masking (data2vec 1.0 vision) and data2vec 2.0's inverse block mask;
worked examples on tiny grids and the recipes' exact counts."""

from __future__ import annotations

import pytest
import torch

from ssl_lightning.nn.block_masking import beit_block_mask, inverse_block_mask_2d


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clamped_square(centre: int, height: int, width: int, side: int) -> set[int]:
    """The `side` x `side` patches around `centre` (offsets from -side // 2), clamped at the borders."""
    row, col = divmod(centre, width)
    offsets = [k - side // 2 for k in range(side)]
    return {
        min(max(row + a, 0), height - 1) * width + min(max(col + b, 0), width - 1)
        for a in offsets
        for b in offsets
    }


# ---- beit_block_mask ---------------------------------------------------------------------------------------


def test_data2vec_vision_setting_masks_up_to_120_of_196():
    mask = beit_block_mask(256, 14, 14, 120, 16, 196, generator=gen(0))
    assert mask.shape == (256, 196) and mask.dtype == torch.bool
    counts = mask.sum(dim=1).float()
    assert counts.max() <= 120 and counts.mean() > 115  # a row stops early only when 10 attempts fail


def test_one_square_block_lands_uniformly():
    """4x4 grid, 4 patches, area 4, aspect 1: every mask is one 2x2 square, its top-left uniform on 3x3."""
    mask = beit_block_mask(
        3600, 4, 4, 4, min_num_patches=4, max_num_patches=4, min_aspect=1.0, generator=gen(1)
    )
    grid = mask.reshape(-1, 4, 4)
    corners = []
    for square in grid:
        rows, cols = square.nonzero(as_tuple=True)
        top, left = int(rows.min()), int(cols.min())
        assert square.sum() == 4 and square[top : top + 2, left : left + 2].all()
        corners.append(top * 3 + left)
    frequency = torch.bincount(torch.tensor(corners), minlength=9).float() / len(corners)
    assert torch.allclose(frequency, torch.full((9,), 1 / 9), atol=0.02)


def test_a_block_as_tall_as_the_grid_is_never_placed():
    """BEiT keeps a block only when h < H and w < W: a 2x2 square does not fit a 2x2 grid: nothing masked."""
    mask = beit_block_mask(8, 2, 2, 4, min_num_patches=4, min_aspect=1.0, generator=gen(2))
    assert not mask.any()


def test_the_count_never_exceeds_the_target():
    """A block adds at most the remaining budget: after a 2x2 square (4), only 1x1 blocks or overlapping
    squares adding <= 2 fit, so rows end between 4 and 6, never above."""
    mask = beit_block_mask(
        500, 6, 6, 6, min_num_patches=4, max_num_patches=4, min_aspect=1.0, generator=gen(3)
    )
    counts = mask.sum(dim=1)
    assert counts.max() == 6 and counts.min() >= 4


def test_beit_block_mask_is_reproducible_from_its_generator():
    first = beit_block_mask(4, 14, 14, 120, generator=gen(4))
    assert torch.equal(beit_block_mask(4, 14, 14, 120, generator=gen(4)), first)
    assert not torch.equal(beit_block_mask(4, 14, 14, 120, generator=gen(5)), first)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_masking_patches": 17}, r"num_masking_patches <= 16"),
        ({"min_aspect": 0.0}, "need 0 < min_aspect <= max_aspect"),
        ({"min_aspect": 0.5, "max_aspect": 0.4}, "need 0 < min_aspect <= max_aspect"),
    ],
)
def test_beit_block_mask_rejects_bad_arguments(kwargs, match):
    args = {"batch": 2, "height": 4, "width": 4, "num_masking_patches": 8} | kwargs
    with pytest.raises(ValueError, match=match):
        beit_block_mask(**args)


# ---- inverse_block_mask_2d ---------------------------------------------------------------------------------


def test_data2vec2_image_recipe_keeps_exactly_39_of_196():
    """Oracle 7: keep share 0.2 of 196 = int(39.2) = 39 kept, 157 masked in every row."""
    mask = inverse_block_mask_2d(32, 14, 14, generator=gen(6))
    assert mask.shape == (32, 196) and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [157] * 32


def test_kept_patches_form_a_clamped_square_around_a_centre():
    """5x5, mask_prob 0.64: int(25 * 0.36 / 9) = 1 centre, int(25 * 0.36) = 9 kept. An inner centre (9 of 25)
    keeps exactly its 3x3 square; a border one keeps its clamped square plus random patches up to 9."""
    kept = ~inverse_block_mask_2d(2000, 5, 5, mask_prob=0.64, mask_prob_adjust=0.0, generator=gen(7))
    assert kept.sum(dim=1).tolist() == [9] * 2000
    squares = 0
    for row in kept:
        patches = set(row.nonzero().flatten().tolist())
        assert any(clamped_square(c, 5, 5, 3) <= patches for c in range(25))
        squares += any(clamped_square(c, 5, 5, 3) == patches for c in range(25) if c // 5 in (1, 2, 3))
    assert squares / 2000 == pytest.approx(9 / 25, abs=0.04)


def test_inverse_block_mask_clamps_on_rectangular_grids():
    """3x8, one centre (int(24 * 0.375 / 9) = 1), 9 kept: the clamped square lies inside the grid."""
    kept = ~inverse_block_mask_2d(300, 3, 8, mask_prob=0.625, mask_prob_adjust=0.0, generator=gen(8))
    assert kept.sum(dim=1).tolist() == [9] * 300
    for row in kept:
        patches = set(row.nonzero().flatten().tolist())
        assert any(clamped_square(c, 3, 8, 3) <= patches for c in range(24))


def test_inverse_block_mask_is_reproducible_from_its_generator():
    first = inverse_block_mask_2d(4, 14, 14, generator=gen(9))
    assert torch.equal(inverse_block_mask_2d(4, 14, 14, generator=gen(9)), first)
    assert not torch.equal(inverse_block_mask_2d(4, 14, 14, generator=gen(10)), first)


def test_inverse_block_mask_rejects_bad_arguments():
    with pytest.raises(ValueError, match="need 0 <= mask_prob <= 1 and mask_length >= 1"):
        inverse_block_mask_2d(2, 14, 14, mask_prob=1.5)
    with pytest.raises(ValueError, match="need batch, height and width >= 1"):
        inverse_block_mask_2d(2, 0, 14)
