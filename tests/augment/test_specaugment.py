import pytest
import torch

from ssl_lightning.augment import SpecAugment

BATCH, FRAMES, MELS = 64, 100, 40


def masked_bands(spec: torch.Tensor, augmented: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool `[B, frames]` and `[B, mels]`: rows/columns changed everywhere (the input has no zeros)."""
    changed = augmented != spec
    return changed.all(dim=2), changed.all(dim=1)


def positive_spec(seed: int = 0) -> torch.Tensor:
    return torch.rand(BATCH, FRAMES, MELS, generator=torch.Generator().manual_seed(seed)) + 1.0


def test_one_mask_each_is_a_single_band_of_bounded_width_filled_with_mask_value() -> None:
    spec = positive_spec()
    augment = SpecAugment(freq_mask_param=10, time_mask_param=30, mask_value=-7.0).train()
    augmented = augment(spec, generator=torch.Generator().manual_seed(1))
    time_band, freq_band = masked_bands(spec, augmented)
    changed = augmented != spec
    # Every changed value lies in a masked frame or a masked mel band, and holds mask_value.
    assert torch.equal(changed, time_band[:, :, None] | freq_band[:, None, :])
    assert torch.all(augmented[changed] == -7.0)
    assert torch.equal(augmented[~changed], spec[~changed])
    for band, limit in [(time_band, 30), (freq_band, 10)]:
        widths = band.sum(dim=1)
        assert widths.max() <= limit
        # A single mask is one contiguous run: its first and last index span exactly its width.
        for row, width in zip(band, widths, strict=True):
            if width > 0:
                index = row.nonzero().squeeze(1)
                assert index[-1] - index[0] + 1 == width


def test_masks_differ_per_sample_and_cover_the_range() -> None:
    spec = positive_spec()
    augmented = SpecAugment(freq_mask_param=10, time_mask_param=30).train()(
        spec, generator=torch.Generator().manual_seed(2)
    )
    time_band, freq_band = masked_bands(spec, augmented)
    assert len({tuple(row.tolist()) for row in time_band}) > BATCH // 2
    assert len({tuple(row.tolist()) for row in freq_band}) > BATCH // 2
    assert time_band[:, :25].any() and time_band[:, 75:].any()
    assert freq_band[:, :10].any() and freq_band[:, 30:].any()


def test_widths_are_uniform_between_zero_and_param_both_included() -> None:
    spec = torch.ones(4000, 50, 1)
    augmented = SpecAugment(freq_mask_param=0, time_mask_param=4).train()(
        spec, generator=torch.Generator().manual_seed(3)
    )
    widths = (augmented[:, :, 0] == 0).sum(dim=1)
    counts = torch.bincount(widths, minlength=5)
    # widths 0..4, each with probability 1/5 (torchaudio's code would draw 0..3, each 1/4)
    assert counts.shape == (5,), f"a width above the param 4 was drawn: counts {counts.tolist()}"
    assert torch.all((counts - 800).abs() < 120), f"widths 0..4 are not uniform: counts {counts.tolist()}"


def test_widths_above_the_axis_length_are_cut_to_it() -> None:
    spec = torch.ones(5100, 6, 1)
    augmented = SpecAugment(freq_mask_param=0, time_mask_param=50).train()(
        spec, generator=torch.Generator().manual_seed(6)
    )
    counts = torch.bincount((augmented[:, :, 0] == 0).sum(dim=1), minlength=7)
    # u uniform on 0..50: widths 0..5 with probability 1/51 each, the whole axis (6) with 45/51
    assert counts.shape == (7,)
    assert torch.all((counts[:6] - 100).abs() < 40), counts.tolist()
    assert abs(counts[6].item() - 4500) < 100, counts.tolist()


def test_several_masks_and_params_larger_than_the_axis() -> None:
    spec = torch.ones(8, 6, 5)
    augmented = SpecAugment(
        freq_mask_param=50, time_mask_param=50, num_freq_masks=3, num_time_masks=3
    ).train()(spec, generator=torch.Generator().manual_seed(4))
    assert augmented.shape == spec.shape
    assert (augmented == 0).any()


def test_generator_makes_it_reproducible() -> None:
    spec = positive_spec()
    augment = SpecAugment(freq_mask_param=10, time_mask_param=30).train()
    first = augment(spec, generator=torch.Generator().manual_seed(5))
    again = augment(spec, generator=torch.Generator().manual_seed(5))
    other = augment(spec, generator=torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_eval_mode_is_identity() -> None:
    spec = positive_spec()
    assert SpecAugment().eval()(spec) is spec


def test_zero_params_leave_the_input_unchanged_in_training() -> None:
    spec = positive_spec()
    assert torch.equal(SpecAugment(freq_mask_param=0, time_mask_param=0).train()(spec), spec)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="freq_mask_param"):
        SpecAugment(freq_mask_param=-1)
    with pytest.raises(ValueError, match=r"\[B, frames, mels\]"):
        SpecAugment()(torch.zeros(10, 10))
