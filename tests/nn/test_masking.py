"""Random patch masking: the count per sample, a partition of the patches, randomness, padding first;
kept_positions."""

import pytest
import torch

from ssl_lightning.nn.masking import kept_positions, num_masked_patches, random_mask, random_patch_mask


def test_masks_75_percent_of_every_sample():
    keep, masked, mask = random_patch_mask(8, 96, 0.75, torch.Generator().manual_seed(0))
    assert keep.shape == (8, 24) and masked.shape == (8, 72) and mask.shape == (8, 96)
    assert keep.dtype == masked.dtype == torch.int64 and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [72] * 8


@pytest.mark.parametrize(("num_patches", "ratio", "expected"), [(96, 0.75, 72), (10, 0.75, 8), (7, 0.5, 4)])
def test_num_masked_is_the_rounded_fraction(num_patches, ratio, expected):
    assert num_masked_patches(num_patches, ratio) == expected


def test_keep_and_mask_partition_the_patches_and_agree_with_the_bool_mask():
    keep, masked, mask = random_patch_mask(5, 40, 0.75, torch.Generator().manual_seed(1))
    both = torch.cat([keep, masked], dim=1).sort(dim=1).values
    assert torch.equal(both, torch.arange(40).expand(5, -1))
    assert mask.gather(1, masked).all() and not mask.gather(1, keep).any()
    assert torch.equal(keep, keep.sort(dim=1).values) and torch.equal(masked, masked.sort(dim=1).values)


def test_each_sample_gets_its_own_mask():
    _, _, mask = random_patch_mask(6, 96, 0.75, torch.Generator().manual_seed(2))
    assert len({tuple(row.tolist()) for row in mask}) == 6


def test_same_generator_seed_gives_the_same_mask_and_another_seed_does_not():
    first = random_patch_mask(4, 96, 0.75, torch.Generator().manual_seed(3))
    again = random_patch_mask(4, 96, 0.75, torch.Generator().manual_seed(3))
    other = random_patch_mask(4, 96, 0.75, torch.Generator().manual_seed(4))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[2], other[2])


def test_every_position_is_masked_with_probability_mask_ratio():
    _, _, mask = random_patch_mask(4000, 16, 0.75, torch.Generator().manual_seed(5))
    frequency = mask.float().mean(dim=0)
    assert torch.allclose(frequency, torch.full((16,), 0.75), atol=0.03)


def test_padded_patches_are_masked_first():
    padding = torch.zeros(3, 20, dtype=torch.bool)
    padding[1, 12:] = True  # 8 padded patches, fewer than the 15 masked ones
    padding[2, 3:] = True  # 17 padded patches, more than the 15 masked ones
    keep, masked, mask = random_patch_mask(
        3, 20, 0.75, torch.Generator().manual_seed(6), padding_mask=padding
    )
    assert mask[1, 12:].all()
    assert mask[2].sum() == 15 and mask[2, 3:].sum() == 15  # every masked patch of sample 2 is padding
    assert set(keep[2].tolist()) >= {0, 1, 2}  # its real patches stay visible


def test_a_generator_makes_the_mask_independent_of_the_global_rng():
    torch.manual_seed(0)
    first = random_patch_mask(2, 32, 0.75, torch.Generator().manual_seed(7))[2]
    torch.manual_seed(1)
    assert torch.equal(random_patch_mask(2, 32, 0.75, torch.Generator().manual_seed(7))[2], first)


def test_without_a_generator_the_global_rng_is_used():
    torch.manual_seed(8)
    first = random_patch_mask(2, 32, 0.75)[2]
    torch.manual_seed(8)
    assert torch.equal(random_patch_mask(2, 32, 0.75)[2], first)


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_a_ratio_outside_0_1_is_rejected(ratio):
    with pytest.raises(ValueError, match="mask_ratio must be in"):
        random_patch_mask(2, 96, ratio)


def test_too_few_patches_to_mask_and_keep_is_rejected():
    with pytest.raises(ValueError, match="at least one patch must be masked and one visible"):
        random_patch_mask(2, 1, 0.75)


def test_a_padding_mask_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match=r"padding_mask must be a bool tensor \[B=2, N=10\]"):
        random_patch_mask(2, 10, 0.75, padding_mask=torch.zeros(2, 11, dtype=torch.bool))


def test_kept_positions_are_the_ascending_unmasked_indices():
    mask = torch.tensor([[True, False, False, True, False], [False, True, True, False, False]])
    kept = kept_positions(mask)
    assert kept.dtype == torch.int64
    assert kept.tolist() == [[1, 2, 4], [0, 3, 4]]


def test_kept_positions_agree_with_random_patch_mask():
    keep, _, mask = random_patch_mask(4, 30, 0.6, torch.Generator().manual_seed(9))
    assert torch.equal(kept_positions(mask), keep)


def test_kept_positions_reject_rows_with_different_counts():
    mask = torch.tensor([[True, False, False], [True, True, False]])
    with pytest.raises(ValueError, match=r"same number of kept positions in every row, got \[1, 2\]"):
        kept_positions(mask)


def test_kept_positions_reject_a_non_bool_mask():
    with pytest.raises(ValueError, match=r"mask must be a bool tensor \[B, N\]"):
        kept_positions(torch.zeros(2, 3))


def test_random_mask_keeps_int_of_the_kept_share_per_row():
    """data2vec 2.0 text: int(L (1 - 0.48)) kept, the rest masked, a fresh draw per row."""
    mask = random_mask(16, 25, 0.48, torch.Generator().manual_seed(0))
    assert mask.shape == (16, 25) and mask.dtype == torch.bool
    assert ((~mask).sum(dim=1) == int(25 * 0.52)).all()  # 13 kept, 12 masked
    assert len({tuple(row.tolist()) for row in mask}) > 1
    with pytest.raises(ValueError, match="keeps 0 of 25"):
        random_mask(2, 25, 0.99)
