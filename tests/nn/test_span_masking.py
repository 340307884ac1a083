"""Span masking (data2vec 1.0 audio) and 1-D block masks (data2vec 2.0 audio): counts, span shapes, padding,
the equalising step, seeds; expectations worked out by hand or by exact counting in the test."""

from __future__ import annotations

from math import comb

import pytest
import torch

from ssl_lightning.nn.span_masking import block_mask_1d, span_mask


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def runs(row: torch.Tensor) -> list[tuple[int, int]]:
    """Maximal runs of True in a 1-D bool tensor as (start, length), by a plain loop."""
    out, start = [], None
    for t, value in enumerate(row.tolist() + [False]):
        if value and start is None:
            start = t
        elif not value and start is not None:
            out.append((start, t - start))
            start = None
    return out


# ---- span_mask ---------------------------------------------------------------------------------------------


def test_data2vec_audio_setting_masks_48_percent_with_equal_counts():
    """Oracle 6: T=500, p=0.65, length 10: ~48% masked; every row the same count; every span 10 long."""
    mask = span_mask(64, 500, 0.65, 10, generator=gen(0))
    assert mask.shape == (64, 500) and mask.dtype == torch.bool
    assert len(set(mask.sum(dim=1).tolist())) == 1
    untrimmed = span_mask(2000, 500, 0.65, 10, require_same_masks=False, generator=gen(1))
    assert untrimmed.float().mean().item() == pytest.approx(0.48, abs=0.015)
    for row in untrimmed[:50]:
        lengths = [length for _, length in runs(row)]
        assert lengths and min(lengths) >= 10  # overlapping spans merge, a span is never cut short


def test_masked_fraction_matches_the_exact_expectation():
    """n = int(32.5 + U) is 32 or 33 (half each); starts are n distinct draws from [0, 490), so step t stays
    unmasked with probability C(490 - c_t, n) / C(490, n), c_t = the starts whose span covers t."""
    starts = 490
    expected = 0.0
    for n in (32, 33):
        for t in range(500):
            covering = len(range(max(0, t - 9), min(starts - 1, t) + 1))
            expected += 0.5 * (1 - comb(starts - covering, n) / comb(starts, n)) / 500
    mask = span_mask(4000, 500, 0.65, 10, require_same_masks=False, generator=gen(2))
    assert mask.float().mean().item() == pytest.approx(expected, abs=0.003)
    assert expected == pytest.approx(0.491, abs=0.001)  # the long-clip limit is 1 - exp(-0.65) = 0.478


def test_one_span_start_is_uniform_over_the_allowed_starts():
    """T=8, length 4, p=0.5: n = int(1.0 + U) = 1 span, start uniform on {0, 1, 2, 3}: step t is masked with
    probability (number of starts covering t) / 4."""
    mask = span_mask(4000, 8, 0.5, 4, generator=gen(3))
    assert torch.equal(mask.sum(dim=1), torch.full((4000,), 4))
    for row in mask[:20]:
        assert len(runs(row)) == 1
    expected = torch.tensor([1, 2, 3, 4, 3, 2, 1, 0]) / 4
    assert torch.allclose(mask.float().mean(dim=0), expected, atol=0.03)
    assert not mask[:, 7].any()


def test_length_one_spans_count_exactly_and_never_start_at_the_last_valid_step():
    """mask_length 1: n = int(0.5 * sz + U) distinct steps from [0, sz - 1); row 1 has 20 valid steps."""
    padding = torch.zeros(2, 100, dtype=torch.bool)
    padding[1, 20:] = True
    mask = span_mask(2, 100, 0.5, 1, padding_mask=padding, require_same_masks=False, generator=gen(4))
    assert mask.sum(dim=1).tolist() == [50, 10]
    assert not mask[0, 99] and not mask[1, 19:].any()


def test_min_masks_forces_a_span():
    """p T / length = 0.1: n = 0 in 90% of the rows, raised to min_masks=1; min_masks=0 keeps them empty."""
    forced = span_mask(1000, 50, 0.01, 5, min_masks=1, require_same_masks=False, generator=gen(5))
    assert torch.equal(forced.sum(dim=1), torch.full((1000,), 5))
    free = span_mask(1000, 50, 0.01, 5, min_masks=0, require_same_masks=False, generator=gen(5))
    assert set(free.sum(dim=1).tolist()) == {0, 5}
    assert (free.sum(dim=1) == 0).float().mean().item() == pytest.approx(0.9, abs=0.03)


def test_padded_steps_are_never_masked_and_rows_are_trimmed_to_the_smallest_count():
    padding = torch.zeros(3, 200, dtype=torch.bool)
    padding[1, 120:] = True
    padding[2, 60:] = True
    free = span_mask(3, 200, 0.65, 10, padding_mask=padding, require_same_masks=False, generator=gen(6))
    same = span_mask(3, 200, 0.65, 10, padding_mask=padding, generator=gen(6))
    assert not (free & padding).any() and not (same & padding).any()
    assert same.sum(dim=1).tolist() == [int(free.sum(dim=1).min())] * 3
    assert not (same & ~free).any()  # the equalising step only removes masked steps (same draws before it)


def test_a_row_that_would_be_fully_masked_is_rejected():
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[1] = True
    with pytest.raises(ValueError, match=r"masked every valid step of row 1 \(0 of 10 steps valid\)"):
        span_mask(2, 10, 0.65, 3, padding_mask=padding, generator=gen(7))


def test_span_mask_is_reproducible_from_its_generator_and_ignores_the_global_rng():
    torch.manual_seed(0)
    first = span_mask(4, 300, 0.65, 10, generator=gen(8))
    torch.manual_seed(1)
    assert torch.equal(span_mask(4, 300, 0.65, 10, generator=gen(8)), first)
    assert not torch.equal(span_mask(4, 300, 0.65, 10, generator=gen(9)), first)
    assert span_mask(4, 300, 0.65, 10, generator=gen(8), device="cpu").device.type == "cpu"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mask_prob": 0.0}, "mask_prob must be in"),
        ({"mask_length": 0}, "mask_length must be >= 1"),
        ({"min_masks": -1}, "min_masks must be >= 0"),
        (
            {"padding_mask": torch.zeros(2, 9, dtype=torch.bool)},
            r"padding_mask must be a bool tensor \[B=2, T=10\]",
        ),
    ],
)
def test_span_mask_rejects_bad_arguments(kwargs, match):
    args = {"batch": 2, "length": 10, "mask_prob": 0.5, "mask_length": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        span_mask(**args)


# ---- block_mask_1d -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [49, 200, 499])
def test_data2vec2_audio_recipe_masks_exactly_half(length):
    mask = block_mask_1d(16, length, 0.5, 5, mask_prob_adjust=0.05, generator=gen(10))
    assert mask.dtype == torch.bool and mask.sum(dim=1).tolist() == [length // 2] * 16


def test_a_block_is_centred_at_offset_length_over_2_and_clamped():
    """T=8, length 4, p=0.5: int(8 * 0.5 / 4) = 1 centre c, uniform on 0..7, marking clamp(c-2 .. c+1):
    step t is marked for c in {t-1..t+2}, plus c <= 2 for t = 0 and c >= 6 for t = 7."""
    mask = block_mask_1d(8000, 8, 0.5, 4, require_same_masks=False, generator=gen(11))
    expected = torch.tensor([3, 4, 4, 4, 4, 4, 3, 2]) / 8
    assert torch.allclose(mask.float().mean(dim=0), expected, atol=0.02)
    assert set(mask.sum(dim=1).tolist()) == {2, 3, 4}


def test_centre_count_is_the_floored_adjusted_share():
    """T=1000, p=0.5, adjust 0.05, length 5: int(1000 * 0.55 / 5) = 110 blocks of 5 before equalising;
    runs away from the ends are at least 5 long."""
    mask = block_mask_1d(8, 1000, 0.5, 5, mask_prob_adjust=0.05, require_same_masks=False, generator=gen(12))
    for row in mask:
        assert int(row.sum()) <= 550
        inner = [length for start, length in runs(row) if start > 0 and start + length < 1000]
        assert min(inner) >= 5
    assert 0.3 < mask.float().mean() < 0.45  # 1 - (1 - 5/1000)^110 = 42% before the ends' clamping


def test_inverse_mask_keeps_the_share_1_minus_mask_prob():
    """inverse_mask: int(100 * (1 - 0.8)) = int(19.999999999999996) = 19 kept, 81 masked (fairseq floats)."""
    mask = block_mask_1d(4, 100, 0.8, 5, inverse_mask=True, generator=gen(13))
    assert mask.sum(dim=1).tolist() == [81] * 4


def test_non_overlapping_blocks_are_aligned_and_counted():
    """T=23, length 5: ceil(23/5) = 5 aligned blocks (the last 3 long); int(5 * 0.4) = 2 of them marked."""
    mask = block_mask_1d(200, 23, 0.4, 5, non_overlapping=True, require_same_masks=False, generator=gen(14))
    for row in mask:
        blocks = [row[k : k + 5] for k in range(0, 23, 5)]
        assert all(block.all() or not block.any() for block in blocks)
        assert sum(bool(block.all()) for block in blocks) == 2
    assert mask[:, 20:].any()  # the truncated last block is used too


def test_expand_adjacent_grows_the_blocks_instead_of_adding_scattered_steps():
    """p=0.5, adjust -0.39: int(100 * 0.11 / 5) = 2 blocks; growth into neighbours reaches 50 in <= 2 runs,
    random additions scatter."""
    grown = block_mask_1d(32, 100, 0.5, 5, mask_prob_adjust=-0.39, expand_adjacent=True, generator=gen(15))
    scattered = block_mask_1d(32, 100, 0.5, 5, mask_prob_adjust=-0.39, generator=gen(15))
    assert grown.sum(dim=1).tolist() == [50] * 32 and scattered.sum(dim=1).tolist() == [50] * 32
    assert max(len(runs(row)) for row in grown) <= 2
    assert min(len(runs(row)) for row in scattered) > 5


def test_expand_adjacent_without_blocks_is_rejected():
    with pytest.raises(ValueError, match="no marked block to grow from"):
        block_mask_1d(2, 100, 0.5, 5, mask_prob_adjust=-0.5, expand_adjacent=True, generator=gen(16))


def test_block_mask_1d_is_reproducible_from_its_generator():
    first = block_mask_1d(4, 300, 0.5, 5, 0.05, generator=gen(17))
    assert torch.equal(block_mask_1d(4, 300, 0.5, 5, 0.05, generator=gen(17)), first)
    assert not torch.equal(block_mask_1d(4, 300, 0.5, 5, 0.05, generator=gen(18)), first)


def test_too_many_non_overlapping_blocks_are_rejected():
    with pytest.raises(ValueError, match=r"needs 6 of 5 blocks"):
        block_mask_1d(2, 25, 1.0, 5, mask_prob_adjust=0.2, non_overlapping=True)
