import pytest
import torch

from ssl_lightning.augment import HaresViews
from ssl_lightning.augment.hares_views import mix_with_rolled
from ssl_lightning.augment.sampling import beta_integer


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_views_are_three_second_windows_and_short_clips_stay_whole() -> None:
    views = HaresViews()
    assert HaresViews.domain == "waveform" and views.crop_samples == 48000
    assert views(torch.randn(4, 160000, generator=gen(0)), gen(1)).shape == (4, 48000)
    assert views(torch.randn(4, 20000, generator=gen(2)), gen(3)).shape == (4, 20000)


def test_crops_are_contiguous_per_sample_windows_over_the_whole_clip() -> None:
    ramp = torch.arange(100.0).expand(400, 100)
    crops = HaresViews(crop_seconds=3.0, sample_rate=10, mix_beta=None)(ramp, gen(4))
    assert crops.shape == (400, 30) and torch.all(crops.diff(dim=1) == 1)
    starts = crops[:, 0]
    assert starts.min() == 0 and starts.max() == 70
    assert len(starts.unique()) > 60


def test_mixing_formula_on_one_hot_clips() -> None:
    # Clip i is the unit impulse e_i, so view_i = lambda_i e_i + (1 - lambda_i) e_j reveals lambda_i and
    # the partner j.
    batch = 7
    views = HaresViews(crop_seconds=1.0, sample_rate=batch)
    out = views(torch.eye(batch), gen(5))
    ratio = out.diagonal()
    assert torch.all((ratio > 0) & (ratio < 1))
    partner = (out - torch.diag(ratio)).argmax(dim=1)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(batch))
    shift = (torch.arange(batch) - partner) % batch
    assert len(shift.unique()) == 1 and 1 <= shift[0] <= batch - 1  # one roll, never the clip itself
    expected = mix_with_rolled(torch.eye(batch), ratio[:, None], shift[0])
    torch.testing.assert_close(out, expected)


def test_mixing_ratio_follows_beta_5_2() -> None:
    # One-hot clips again: the diagonals of 40 batches of 500 views are 20000 draws of lambda.
    views = HaresViews(crop_seconds=1.0, sample_rate=500)
    generator = gen(6)
    ratio = torch.cat([views(torch.eye(500), generator).diagonal() for _ in range(40)])
    assert abs(ratio.mean().item() - 5 / 7) < 0.005  # Beta(5, 2): mean 5/7
    assert abs(ratio.var().item() - 10 / 392) < 0.002  # variance ab / ((a+b)^2 (a+b+1))
    cdf = 6 * ratio.sort().values ** 5 - 5 * ratio.sort().values ** 6  # Beta(5, 2) CDF
    uniform = (torch.arange(ratio.numel()) + 0.5) / ratio.numel()
    assert (cdf - uniform).abs().max() < 0.015  # Kolmogorov-Smirnov distance


def test_beta_sampler_is_an_order_statistic_of_uniforms() -> None:
    draws = torch.rand(3, 6, generator=gen(7)).sort(dim=-1).values[:, 4]
    torch.testing.assert_close(beta_integer(5, 2, (3,), torch.device("cpu"), gen(7)), draws)
    with pytest.raises(ValueError, match="integer"):
        beta_integer(0.5, 2, (3,), torch.device("cpu"))


def test_views_replay_with_a_generator_and_differ_between_calls() -> None:
    clips = torch.randn(8, 64000, generator=gen(8))
    views = HaresViews()
    assert torch.equal(views(clips, gen(9)), views(clips, gen(9)))
    assert not torch.equal(views(clips, gen(9)), views(clips, gen(10)))


def test_eval_mode_makes_the_same_views_and_a_single_clip_is_not_mixed() -> None:
    clips = torch.randn(3, 64000, generator=gen(11))
    assert torch.equal(HaresViews().eval()(clips, gen(13)), HaresViews()(clips, gen(13)))
    one = HaresViews(crop_seconds=1.0, sample_rate=5)(torch.arange(5.0)[None], gen(12))
    assert torch.equal(one, torch.arange(5.0)[None])


def test_bad_arguments_and_inputs_raise() -> None:
    with pytest.raises(ValueError, match="mix_beta"):
        HaresViews(mix_beta=(5.0, 2.5))
    with pytest.raises(ValueError, match="crop_seconds"):
        HaresViews(crop_seconds=0)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        HaresViews()(torch.randn(2, 1, 16000))
