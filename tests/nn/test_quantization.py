import pytest
import torch
from torch import nn

from ssl_lightning.nn.quantization import (
    PrecisionSampler,
    QuantConv2d,
    QuantizerConfig,
    QuantLinear,
    linear_quantize,
    precision_set,
)

MODES = [("nearest", True), ("nearest", False), ("floor", True), ("floor", False)]


def test_worked_example_two_bits() -> None:
    x = torch.tensor([0.0, 0.3, 1.0])  # S = 1 / 3; 0.3 / S = 0.9
    assert torch.allclose(linear_quantize(x, 2), torch.tensor([0.0, 1 / 3, 1.0]), atol=1e-7)
    assert torch.allclose(linear_quantize(x, 2, zero_point=False), torch.tensor([0.0, 1 / 3, 1.0]), atol=1e-7)
    # eq. 9 as printed (floor) takes 0.9 down to 0
    assert torch.equal(linear_quantize(x, 2, rounding="floor"), torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(
        linear_quantize(x, 2, rounding="floor", zero_point=False), torch.tensor([0.0, 0.0, 1.0])
    )


def test_zero_point_worked_example_one_bit() -> None:
    x = torch.tensor([0.2, 0.5, 1.1])  # S = 0.9
    # grid from the minimum: (x - 0.2) / 0.9 = [0, 1/3, 1] -> {0.2, 1.1}
    assert torch.allclose(linear_quantize(x, 1), torch.tensor([0.2, 0.2, 1.1]), atol=1e-6)
    # eq. 9 as printed, grid at multiples of S: x / 0.9 = [0.22, 0.56, 1.22]
    assert torch.allclose(linear_quantize(x, 1, zero_point=False), torch.tensor([0.0, 0.9, 0.9]), atol=1e-6)
    expected_floor = torch.tensor([0.0, 0.0, 0.9])
    assert torch.allclose(
        linear_quantize(x, 1, rounding="floor", zero_point=False), expected_floor, atol=1e-6
    )


def test_eight_bit_oracle_away_from_ties() -> None:
    x = torch.tensor([0.0, 0.11, 0.37, 0.5004, 1.0])  # x * 255 = 0, 28.05, 94.35, 127.60, 255
    expected = torch.tensor([0.0, 28.0, 94.0, 128.0, 255.0]) / 255
    assert torch.allclose(linear_quantize(x, 8), expected, atol=1e-7)


def test_ties_follow_cpts_division_by_the_scale() -> None:
    # float32 0.1 / float32(1 / 255) = 25.4999... (CPT divides by the scale), so 0.1 goes to 25 / 255;
    # multiplying by 255 instead gives 25.50000038 -> 26
    assert linear_quantize(torch.tensor([0.0, 0.1, 1.0]), 8)[1].item() == pytest.approx(25 / 255, abs=1e-7)


@pytest.mark.parametrize("bits", [2, 4, 6, 8, 12, 16])
def test_error_bounds_and_range_endpoints(bits: int) -> None:
    x = torch.randn(4000, generator=torch.Generator().manual_seed(bits)) * 3 + 1
    scale = (x.max() - x.min()) / (2**bits - 1)
    nearest = linear_quantize(x, bits)
    assert (nearest - x).abs().max() <= scale / 2 + 1e-6
    assert nearest.min() == x.min()
    assert nearest.max().item() == pytest.approx(x.max().item(), abs=1e-6)
    floor = linear_quantize(x, bits, rounding="floor")
    assert (x - floor).min() >= -0.05 * scale  # floor's tolerance for float error: 4 ulp of 2^bits - 1
    assert (x - floor).max() < scale + 1e-6


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 5, 8])
def test_at_most_two_to_the_bits_values(bits: int) -> None:
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    values = linear_quantize(x, bits).unique()
    assert values.numel() <= 2**bits
    assert values.numel() >= 2 ** min(bits, 5) - 2  # a normal sample fills (almost) every level


def test_eq9_as_printed_can_take_one_more_value_and_leave_the_range() -> None:
    x = torch.tensor([0.5, 1.0, 1.5])  # 1 bit: S = 1; x / S = 0.5, 1, 1.5 round (half to even) to 0, 1, 2
    printed = linear_quantize(x, 1, zero_point=False)
    assert torch.equal(printed, torch.tensor([0.0, 1.0, 2.0]))  # 3 values from 1 bit, outside [0.5, 1.5]
    assert torch.equal(linear_quantize(x, 1), torch.tensor([0.5, 0.5, 1.5]))  # (x - 0.5) / S = 0, 0.5, 1


def test_one_bit_maps_to_min_or_max_per_row() -> None:
    w = torch.tensor([[0.0, 0.4, 0.6, 1.0], [-3.0, -2.9, 5.0, 1.1]])
    per_tensor = linear_quantize(w, 1)
    assert set(per_tensor.flatten().tolist()) <= {-3.0, 5.0}
    per_channel = linear_quantize(w, 1, per_channel=True)
    assert torch.equal(per_channel, torch.tensor([[0.0, 0.0, 1.0, 1.0], [-3.0, -3.0, 5.0, 5.0]]))


def test_per_channel_ranges_are_independent() -> None:
    w = torch.randn(4, 3, 3, 3, generator=torch.Generator().manual_seed(1))
    scaled = w.clone()
    scaled[2] *= 10
    before, after = linear_quantize(w, 4, per_channel=True), linear_quantize(scaled, 4, per_channel=True)
    others = [0, 1, 3]
    assert torch.equal(before[others], after[others])
    assert torch.allclose(after[2], before[2] * 10, rtol=1e-5)
    assert not torch.equal(linear_quantize(w, 4)[others], linear_quantize(scaled, 4)[others])


@pytest.mark.parametrize(("rounding", "zero_point"), MODES)
def test_constant_tensor_is_unchanged(rounding: str, zero_point: bool) -> None:
    for value in (0.0, 5.0, -1e-3):
        x = torch.full((2, 3), value)
        assert torch.equal(linear_quantize(x, 4, rounding=rounding, zero_point=zero_point), x)
    w = torch.stack([torch.full((3,), 2.5), torch.tensor([0.0, 0.5, 1.0])])
    out = linear_quantize(w, 1, per_channel=True, rounding=rounding, zero_point=zero_point)
    assert torch.isfinite(out).all()
    assert torch.equal(out[0], w[0])


@pytest.mark.parametrize(("rounding", "zero_point"), MODES)
def test_straight_through_gradient_is_identity(rounding: str, zero_point: bool) -> None:
    x = torch.randn(5, 7, requires_grad=True)
    linear_quantize(x, 3, rounding=rounding, zero_point=zero_point).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    w = torch.randn(4, 6, requires_grad=True)
    (linear_quantize(w, 3, per_channel=True) * torch.arange(6.0)).sum().backward()
    assert torch.equal(w.grad, torch.arange(6.0).expand(4, 6))


def test_explicit_range_clamps_and_masks_the_gradient() -> None:
    x = torch.tensor([-1.0, 0.5, 2.0, 1.0], requires_grad=True)
    out = linear_quantize(x, 2, x_min=0.0, x_max=1.0)  # 0.5 * 3 = 1.5 rounds to 2 -> 2/3
    assert torch.allclose(out, torch.tensor([0.0, 2 / 3, 1.0, 1.0]), atol=1e-7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.tensor([0.0, 1.0, 0.0, 1.0]))
    only_max = linear_quantize(torch.tensor([0.0, 0.6, 3.0]), 1, x_max=1.0)
    assert torch.equal(only_max, torch.tensor([0.0, 1.0, 1.0]))


def test_full_precision_is_identity() -> None:
    x = torch.randn(3, 4)
    for bits in (None, 32, 64):
        assert linear_quantize(x, bits) is x
    integer = torch.arange(3)
    assert linear_quantize(integer, None) is integer


def test_bad_quantizer_configs_raise() -> None:
    with pytest.raises(ValueError, match="activation_range must be one of"):
        QuantizerConfig(activation_range="ema")
    with pytest.raises(ValueError, match=r"range_momentum must be in \[0, 1\)"):
        QuantizerConfig(range_momentum=1.0)


def test_bad_arguments_raise_clear_errors() -> None:
    x = torch.randn(4)
    with pytest.raises(ValueError, match="bits must be >= 1"):
        linear_quantize(x, 0)
    with pytest.raises(TypeError, match="bits must be an int"):
        linear_quantize(x, 4.0)
    with pytest.raises(TypeError, match="bits must be an int"):
        linear_quantize(x, True)
    with pytest.raises(ValueError, match="rounding must be one of"):
        linear_quantize(x, 4, rounding="up")
    with pytest.raises(TypeError, match="floating-point"):
        linear_quantize(torch.arange(4), 4)
    with pytest.raises(ValueError, match="empty tensor"):
        linear_quantize(torch.empty(0), 4)
    with pytest.raises(ValueError, match="x_min must be <= x_max"):
        linear_quantize(x, 4, x_min=1.0, x_max=0.0)
    with pytest.raises(ValueError, match="QuantizerConfig.rounding"):
        QuantizerConfig(rounding="ceil")


def test_half_precision_inputs_keep_their_dtype() -> None:
    x = torch.linspace(-1, 1, 101)
    out = linear_quantize(x.bfloat16(), 4)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), linear_quantize(x.bfloat16().float(), 4), atol=1e-2)


def test_quant_conv2d_worked_example_weight_per_channel_and_input_per_tensor() -> None:
    conv = QuantConv2d(1, 2, kernel_size=(1, 3))
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, 0.1, -0.5], [0.2, 0.6, 0.0]]).view(2, 1, 1, 3))
        conv.bias.copy_(torch.tensor([0.05, -0.05]))
    x = torch.tensor([0.0, 0.4, 0.9]).view(1, 1, 1, 3)
    # full precision: 0.1 * 0.4 - 0.5 * 0.9 + 0.05 = -0.36; 0.6 * 0.4 - 0.05 = 0.19
    torch.testing.assert_close(conv(x).flatten(), torch.tensor([-0.36, 0.19]))
    conv.bits = 2
    # input, one range: S = 0.9 / 3 = 0.3 -> (0, 0.3, 0.9); weight row 0: S = 1.5 / 3 = 0.5 ->
    # (1, 0, -0.5); row 1: S = 0.6 / 3 = 0.2 -> (0.2, 0.6, 0); bias full precision:
    # -0.5 * 0.9 + 0.05 = -0.40; 0.6 * 0.3 - 0.05 = 0.13
    torch.testing.assert_close(conv(x).flatten(), torch.tensor([-0.40, 0.13]))
    assert "bits=2" in repr(conv)
    weights_only = QuantConv2d(1, 2, (1, 3), bits=2, config=QuantizerConfig(quantize_input=False))
    weights_only.load_state_dict(conv.state_dict())
    # -0.5 * 0.9 + 0.05 = -0.40; 0.6 * 0.4 - 0.05 = 0.19
    torch.testing.assert_close(weights_only(x).flatten(), torch.tensor([-0.40, 0.19]))


def test_quant_linear_worked_example_per_tensor_weight_and_straight_through_gradients() -> None:
    linear = QuantLinear(3, 2, bias=False, bits=2, config=QuantizerConfig(weight_per_channel=False))
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 0.1, -0.5], [0.2, 0.6, 0.0]]))
    x = torch.tensor([[0.0, 0.4, 0.9]], requires_grad=True)
    out = linear(x)
    # weight, one range (-0.5, 1): S = 0.5 -> [[1, 0, -0.5], [0, 0.5, 0]]; input -> (0, 0.3, 0.9)
    torch.testing.assert_close(out, torch.tensor([[-0.45, 0.15]]))
    out.sum().backward()
    # straight through: d/dx = column sums of Q(w); d/dw = Q(x) in each row
    torch.testing.assert_close(x.grad, torch.tensor([[1.0, 0.5, -0.5]]))
    torch.testing.assert_close(linear.weight.grad, torch.tensor([[0.0, 0.3, 0.9]] * 2))
    linear.bits = None
    torch.testing.assert_close(linear(x), torch.tensor([[-0.41, 0.24]]))


def test_running_range_worked_example_cpt_momentum_and_eval_quantization() -> None:
    layer = QuantLinear(3, 3, bias=False, bits=2)
    nn.init.eye_(layer.weight)  # per channel, each row's range is (0, 1): Q(w) = w
    assert layer.running_range.item() == 0 and layer.range_updates.item() == 0  # CPT starts at 0
    layer(torch.tensor([[0.0, 0.4, 0.9]]))  # batch min 0, range 0.9
    # running = 0.9 * running + 0.1 * batch: zero point 0, range 0.09
    assert (layer.running_zero_point.item(), layer.running_range.item()) == pytest.approx((0.0, 0.09))
    trained = layer(torch.tensor([[-1.0, 0.0, 2.0]]))  # training quantizes with the batch range: S = 1
    torch.testing.assert_close(trained, torch.tensor([[-1.0, 0.0, 2.0]]))
    # zero point 0.9 * 0 + 0.1 * -1 = -0.1; range 0.9 * 0.09 + 0.1 * 3 = 0.381
    assert (layer.running_zero_point.item(), layer.running_range.item()) == pytest.approx((-0.1, 0.381))
    assert layer.range_updates.item() == 2
    layer.eval()
    # S = 0.381 / 3 = 0.127, grid -0.1, 0.027, 0.154, 0.281: -0.5 is clamped to -0.1, 0.1 -> 1.575
    # steps -> 2 -> 0.154, 1.0 is clamped to 0.281
    torch.testing.assert_close(layer(torch.tensor([[-0.5, 0.1, 1.0]])), torch.tensor([[-0.1, 0.154, 0.281]]))
    assert layer.range_updates.item() == 2  # eval mode does not update


def _trained_layer(activation_range: str) -> QuantLinear:
    torch.manual_seed(0)
    layer = QuantLinear(4, 3, bits=4, config=QuantizerConfig(activation_range=activation_range))
    for _ in range(30):
        layer(torch.randn(16, 4))
    return layer.eval()


def test_eval_features_of_a_sample_do_not_depend_on_its_batch_with_running_ranges() -> None:
    sample = torch.tensor([[0.3, -0.2, 0.8, 0.1]])
    others = torch.tensor([[5.0, -4.0, 0.0, 1.0]])  # an outlier widens a batch range
    running = _trained_layer("running")
    with torch.no_grad():
        torch.testing.assert_close(running(torch.cat([sample, others]))[:1], running(sample), rtol=0, atol=0)
        batch = _trained_layer("batch")
        alone, together = batch(sample), batch(torch.cat([sample, others]))[:1]
    assert (alone - together).abs().max() > 0.05  # per-batch ranges: the sample's features move
    assert batch.range_updates.item() == 0


def test_a_layer_without_a_running_range_uses_the_batch_range_in_eval_mode() -> None:
    layer = QuantLinear(3, 3, bias=False, bits=2).eval()
    nn.init.eye_(layer.weight)
    # no training batch yet: the batch's own range (0, 0.9), S = 0.3 -> (0, 0.3, 0.9)
    torch.testing.assert_close(layer(torch.tensor([[0.0, 0.4, 0.9]])), torch.tensor([[0.0, 0.3, 0.9]]))


def test_measure_mode_averages_the_batch_ranges_and_passes_the_input() -> None:
    layer = QuantLinear(3, 3, bias=False, bits=2).eval()
    nn.init.eye_(layer.weight)
    layer.measure = True
    first = layer(torch.tensor([[0.0, 0.4, 0.9]]))
    layer(torch.tensor([[-1.0, 0.0, 2.0]]))
    torch.testing.assert_close(first, torch.tensor([[0.0, 0.4, 0.9]]))  # input unquantized
    # mean of the two batches: zero point (0 - 1) / 2 = -0.5, range (0.9 + 3) / 2 = 1.95
    assert (layer.running_zero_point.item(), layer.running_range.item()) == pytest.approx((-0.5, 1.95))


def test_state_dicts_carry_the_ranges_and_plain_ones_load_with_them_reset() -> None:
    layer = QuantLinear(3, 2, bits=4)
    layer(torch.randn(5, 3))
    copy = QuantLinear(3, 2, bits=4)
    copy.load_state_dict(layer.state_dict())
    assert copy.range_updates.item() == 1 and torch.equal(copy.running_range, layer.running_range)
    plain = nn.Linear(3, 2)
    copy.load_state_dict(plain.state_dict())  # strict: the range buffers may be absent
    assert copy.range_updates.item() == 0 and copy.running_range.item() == 0
    assert torch.equal(copy.weight, plain.weight)
    with pytest.raises(RuntimeError, match="Missing key.*weight"):
        copy.load_state_dict({"bias": plain.bias})


def test_from_float_shares_parameters_and_mode() -> None:
    conv = nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2, bias=False).eval()
    quant = QuantConv2d.from_float(conv)
    assert quant.weight is conv.weight and quant.bias is None and not quant.training
    assert (quant.stride, quant.padding, quant.groups, quant.bits) == ((2, 2), (1, 1), 2, None)
    linear = nn.Linear(3, 2)
    quant_linear = QuantLinear.from_float(linear, QuantizerConfig(rounding="floor"))
    assert quant_linear.weight is linear.weight and quant_linear.bias is linear.bias
    assert quant_linear.config.rounding == "floor"
    x = torch.randn(1, 2, 5, 5)
    assert torch.equal(quant(x), conv(x))


def test_precision_set_parsing() -> None:
    assert precision_set("4-16") == tuple(range(4, 17))
    assert precision_set(" 6 - 16 ") == tuple(range(6, 17))
    assert precision_set("8") == (8,)
    assert precision_set(8) == (8,)
    for bad in ("16-4", "0-4", "a-b", "4-", "4..16", 4.5):
        with pytest.raises(ValueError, match="precision set"):
            precision_set(bad)


def test_sampler_range_coverage_and_determinism() -> None:
    sampler = PrecisionSampler(4, 16, seed=3)
    draws = [sampler.sample() for _ in range(600)]
    assert set(draws) == set(range(4, 17))
    pairs = [sampler.sample_pair() for _ in range(300)]
    assert {q for pair in pairs for q in pair} == set(range(4, 17))
    assert any(q1 != q2 for q1, q2 in pairs) and any(q1 == q2 for q1, q2 in pairs)
    again = PrecisionSampler(4, 16, seed=3)
    assert [again.sample() for _ in range(600)] == draws
    assert [PrecisionSampler(4, 16, seed=4).sample() for _ in range(600)] != draws


def test_sampler_distinct_and_global_generator() -> None:
    distinct = PrecisionSampler.from_set("6-8", seed=0, distinct=True)
    pairs = [distinct.sample_pair() for _ in range(200)]
    assert all(q1 != q2 and {q1, q2} <= {6, 7, 8} for q1, q2 in pairs)
    assert distinct.precisions == (6, 7, 8)
    torch.manual_seed(11)
    first = [PrecisionSampler(6, 16).sample_pair() for _ in range(20)]
    torch.manual_seed(11)
    assert [PrecisionSampler(6, 16).sample_pair() for _ in range(20)] == first
    with pytest.raises(ValueError, match="at least two precisions"):
        PrecisionSampler(8, 8, distinct=True)
    with pytest.raises(ValueError, match="low <= high"):
        PrecisionSampler(16, 4)
