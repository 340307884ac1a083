import pytest
import torch
from einops import rearrange

from ssl_lightning.augment.randomized_quantization import RandomizedQuantization

PAD = 1e-6


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """`[8, 3, 6, 7]` with a different scale and offset per channel."""
    x = torch.randn(8, 3, 6, 7, generator=gen(seed), dtype=torch.float64)
    return (
        x * torch.tensor([1.0, 10.0, 0.1])[:, None, None] + torch.tensor([0.0, 5.0, -3.0])[:, None, None]
    ).to(dtype)


def slices(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """`[B, C, N]`: the values of each (sample, channel) slice."""
    return rearrange(x.movedim(channel_dim, 1), "b c ... -> b c (...)")


def distinct_per_slice(x: torch.Tensor, channel_dim: int) -> torch.Tensor:
    flat = slices(x, channel_dim)
    return torch.tensor([[row.unique().numel() for row in sample] for sample in flat])


@pytest.mark.parametrize(
    ("shape", "channel_dim"),
    [((4, 3, 8, 8), 1), ((4, 40, 30), 1), ((4, 30, 40), -1), ((4, 1, 40, 30), 2), ((4, 12, 16), -1)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_shape_dtype_range_and_at_most_k_values_per_channel(shape, channel_dim, dtype) -> None:
    x = torch.randn(shape, generator=gen(1)).to(dtype)
    out = RandomizedQuantization(num_bins=5, channel_dim=channel_dim)(x, generator=gen(2))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert distinct_per_slice(out, channel_dim).max() <= 5
    values, quantized = slices(x, channel_dim).double(), slices(out, channel_dim).double()
    lo, hi = values.amin(2, keepdim=True), values.amax(2, keepdim=True)
    tolerance = 1e-2 * (hi - lo) if dtype == torch.bfloat16 else 0.0
    assert torch.all(quantized >= lo - tolerance)
    assert torch.all(quantized <= hi + PAD + tolerance)


def test_channel_dim_picks_the_axis_that_keeps_its_own_bins() -> None:
    tokens = torch.randn(2, 50, 16, generator=gen(3))  # [B, L, D]: channels are the D embedding dims
    out = RandomizedQuantization(num_bins=3, channel_dim=-1)(tokens, generator=gen(4))
    assert distinct_per_slice(out, -1).max() <= 3
    assert distinct_per_slice(out, 1).min() > 3  # a token's D values come from D different quantizers


def test_one_bin_collapses_each_channel_to_one_value() -> None:
    x = images()
    lo, hi = slices(x, 1).amin(2), slices(x, 1).amax(2)
    middle = RandomizedQuantization(num_bins=1, collapse_to_val="middle")(x)
    assert torch.allclose(slices(middle, 1), ((lo + hi + PAD) / 2)[..., None].expand_as(slices(x, 1)))
    random = slices(RandomizedQuantization(num_bins=1)(x, generator=gen(5)), 1)
    assert torch.all(random == random[..., :1])
    assert torch.all((random[..., 0] >= lo) & (random[..., 0] < hi + PAD))


def test_inside_random_representatives_are_uniform_within_the_bin() -> None:
    x = torch.linspace(0, 1, 11).expand(4000, 1, 11)  # [B, C=1, N]: every slice spans [0, 1]
    out = RandomizedQuantization(num_bins=1, channel_dim=1)(x, generator=gen(6))[:, 0, 0]
    assert out.mean().item() == pytest.approx(0.5, abs=0.02)
    assert (out < 0.25).float().mean().item() == pytest.approx(0.25, abs=0.03)


def test_worked_example_uniform_middle_two_bins() -> None:
    x = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=torch.float64).view(1, 1, 5)
    out = RandomizedQuantization(num_bins=2, collapse_to_val="middle", spacing="uniform")(x)
    upper = (0.5 + 1.0 + PAD) / 2  # 0.5 equals the cut: it goes to the upper bin, as 1.0 (= hi) does
    assert out.flatten().tolist() == pytest.approx([0.25, 0.25, upper, upper, upper], abs=1e-12)


def test_uniform_spacing_gives_exactly_k_equal_bins() -> None:
    x = torch.linspace(0, 1, 701, dtype=torch.float64).view(1, 1, 701)
    out = RandomizedQuantization(num_bins=7, collapse_to_val="middle", spacing="uniform")(x).flatten()
    counts = torch.unique(out, return_counts=True)[1]
    assert counts.numel() == 7
    assert torch.all((counts - 100).abs() <= 1)


def test_quantizer_is_monotone_and_both_representatives_share_the_same_bins() -> None:
    x = images(7)
    middle = RandomizedQuantization(num_bins=6, collapse_to_val="middle")(x, generator=gen(8))
    random = RandomizedQuantization(num_bins=6)(x, generator=gen(8))  # same seed: same cut points
    for values, mid, rnd in zip(
        slices(x, 1).flatten(0, 1),
        slices(middle, 1).flatten(0, 1),
        slices(random, 1).flatten(0, 1),
        strict=True,
    ):
        order = values.argsort()
        assert torch.all(mid[order].diff() >= 0) and torch.all(rnd[order].diff() >= 0)
        # identical partitions: two values share a midpoint iff they share a random representative
        assert torch.equal(mid[:, None] == mid[None, :], rnd[:, None] == rnd[None, :])


def test_affine_equivariance_with_the_same_seed() -> None:
    x = images(9)
    rq = RandomizedQuantization(num_bins=8)
    out = rq(x, generator=gen(10))
    shifted = rq(3.0 * x - 2.0, generator=gen(10))
    assert torch.allclose(shifted, 3.0 * out - 2.0, atol=3 * 2 * PAD)


def test_constant_channel_stays_within_the_pad_of_its_value() -> None:
    x = torch.full((2, 3, 4, 4), 2.5, dtype=torch.float64)
    out = RandomizedQuantization(num_bins=4)(x, generator=gen(11))
    assert torch.all((out - 2.5).abs() <= PAD)


def test_randomness_is_per_sample_per_call_and_reproducible_with_a_generator() -> None:
    one = images(12)[:1]
    batch = one.expand(6, -1, -1, -1)
    rq = RandomizedQuantization(num_bins=4)
    out = rq(batch, generator=gen(13))
    assert len({tuple(row.flatten().tolist()) for row in out}) == 6  # same sample, six quantizations
    assert torch.equal(out, rq(batch, generator=gen(13)))
    assert not torch.equal(out, rq(batch, generator=gen(14)))
    assert not torch.equal(rq(batch), rq(batch))


def test_application_probability_is_per_sample() -> None:
    x = torch.randn(400, 2, 5, 5, generator=gen(15))
    assert torch.equal(RandomizedQuantization(p=0.0)(x, generator=gen(16)), x)
    assert not torch.any((RandomizedQuantization(p=1.0)(x, generator=gen(16)) == x).all(dim=(1, 2, 3)))
    out = RandomizedQuantization(num_bins=3, p=0.3)(x, generator=gen(17))
    kept = (out == x).flatten(1)
    untouched = kept.all(dim=1)
    assert torch.all(untouched | ~kept.any(dim=1))  # each sample entirely quantized or entirely original
    assert torch.all(untouched | (distinct_per_slice(out, 1) <= 3).all(dim=1))
    assert (1 - untouched.float().mean()).item() == pytest.approx(0.3, abs=0.07)


def test_no_gradients_needed_and_eval_mode_is_identity() -> None:
    x = images(18, dtype=torch.float32).requires_grad_(True)
    rq = RandomizedQuantization()
    assert not rq(x).requires_grad
    with torch.inference_mode():
        assert rq(x.detach()).shape == x.shape
    assert rq.eval()(x) is x


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_bins": 0}, "num_bins"),
        ({"p": 1.5}, "p must be"),
        ({"collapse_to_val": "all_zeros"}, "collapse_to_val"),
        ({"spacing": "log"}, "spacing"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RandomizedQuantization(**kwargs)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="channel_dim=0"):
        RandomizedQuantization(channel_dim=0)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="channel_dim=3"):
        RandomizedQuantization(channel_dim=3)(torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="floating-point"):
        RandomizedQuantization()(torch.ones(2, 3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point"):
        RandomizedQuantization()(torch.ones(5))
