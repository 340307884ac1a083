"""Fake (simulated) linear quantization for Contrastive Quant: the quantizer of its eq. 9, layers, precisions.

Contrastive Quant (CQ) quantizes the weights and the input activations of every convolution and
linear layer with the linear quantizer of Jacob et al. (2018), eq. 9 of the paper:

    A_q = S_a * R(A / S_a),    S_a = (max(A) - min(A)) / (2^q - 1)

and trains with straight-through gradients. Here the default follows the CPT quantizer of the same
group (GATECH-EIC/CPT, `modules/quantize.py`), which CQ builds on: the grid starts at min(A) (zero
point = min, so min and max are exactly representable and the output takes at most 2^q values),
R rounds to the nearest level, weights use one range per output channel and activations one range
per tensor. Eq. 9 as printed (R = floor, grid at integer multiples of S_a) is available through
`rounding="floor", zero_point=False`. It is not the default: floor biases every value down by
S_a / 2 on average, and a grid not anchored at min(A) generally misses min and max (values can
leave [min, max]; with round-to-nearest it can even take 2^q + 1 values).

Activation ranges (`QuantizerConfig.activation_range`): "running" (default) is CPT's
`QuantMeasure`: each layer keeps a running zero point (min) and range of its input, 0 at first and
updated in training mode by every quantized forward as running = 0.9 * running + 0.1 * batch
(momentum 0.9 multiplies the old value, unlike BatchNorm's), one value per tensor; training
quantizes with the batch's own min / max and eval mode with the running ones (input clamped into
them), so an eval feature of a sample does not depend on the rest of its batch. "batch" uses the
min / max of each input tensor in both modes. The scale is max(range / (2^q - 1), 1e-8), as CPT's.

The quantized tensors stay floating point (quantize, then map back to real values), so the layers
run the ordinary float convolution / matmul.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

Rounding = Literal["nearest", "floor"]
ActivationRange = Literal["running", "batch"]
FULL_PRECISION_BITS = 32
ROUNDINGS = ("nearest", "floor")
ACTIVATION_RANGES = ("running", "batch")
RANGE_BUFFERS = ("running_zero_point", "running_range", "range_updates")
"""The buffers of a quant layer's running activation range (`QuantLayer`)."""
MIN_SCALE = 1e-8
"""Smallest quantization step, as CPT's (`torch.max(scale, 1e-8)`): a constant tensor keeps its value."""


def check_bits(bits: int | None) -> None:
    """Raise unless `bits` is None (full precision) or an int >= 1."""
    if bits is None:
        return
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise TypeError(f"bits must be an int >= 1 or None (full precision), got {bits!r}")
    if bits < 1:
        raise ValueError(f"bits must be >= 1 (or None / >= 32 for full precision), got {bits}")


def is_full_precision(bits: int | None) -> bool:
    """True for `None` and `bits >= 32`: the quantizer is the identity."""
    return bits is None or bits >= FULL_PRECISION_BITS


class _LinearQuantizeSTE(torch.autograd.Function):
    """Forward: fake-quantize to the grid of step max(value_range / levels, MIN_SCALE) starting at lo;
    backward: straight-through.

    The gradient passes unchanged (identity); when the range was given explicitly (`clip`) it is
    zero where x lay outside [lo, lo + value_range] and was clamped. No gradient flows to the range.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx,
        x: Tensor,
        lo: Tensor,
        value_range: Tensor,
        levels: int,
        rounding: str,
        zero_point: bool,
        clip: bool,
    ) -> Tensor:
        ctx.clip = clip
        work = x.float() if x.element_size() < 4 else x
        lo, value_range = lo.to(work.dtype), value_range.to(work.dtype)
        if clip:
            hi = lo + value_range
            ctx.save_for_backward((x >= lo) & (x <= hi))
            work = work.clamp(lo, hi)
        scale = (value_range / levels).clamp_min(MIN_SCALE)
        grid = (work - lo).div_(scale) if zero_point else work.div(scale)
        if rounding == "nearest":
            grid.round_()
        else:
            # grid points carry float error of up to a few ulp of `levels`: floor them to themselves
            grid.add_(4 * torch.finfo(work.dtype).eps * levels).floor_()
        out = grid.mul_(scale)
        if zero_point:
            out.add_(lo)
        else:
            out = torch.where(value_range > 0, out, work)
        return out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        if ctx.clip:
            (inside,) = ctx.saved_tensors
            grad = grad * inside
        return grad, None, None, None, None, None, None


def _range(x: Tensor, per_channel: bool) -> tuple[Tensor, Tensor]:
    """min and max of `x`: 0-dim tensors, or `[C, 1, ..., 1]` per slice of dim 0 when `per_channel`."""
    if not per_channel:
        return torch.aminmax(x.detach())
    lo, hi = torch.aminmax(rearrange(x.detach(), "c ... -> c (...)"), dim=1)
    shape = (-1,) + (1,) * (x.dim() - 1)
    return lo.view(shape), hi.view(shape)


def linear_quantize(
    x: Tensor,
    bits: int | None,
    x_min: float | Tensor | None = None,
    x_max: float | Tensor | None = None,
    *,
    per_channel: bool = False,
    rounding: Rounding = "nearest",
    zero_point: bool = True,
) -> Tensor:
    """Fake-quantize `x[...]` to `bits` bits with eq. 9's linear quantizer; straight-through gradient.

    With range = x_max - x_min and S = range / (2^bits - 1), the output (same shape and dtype as x) is
    `x_min + S * R((x - x_min) / S)` (`zero_point=True`, default) or `S * R(x / S)` (`zero_point=False`,
    eq. 9 as printed), R = round half to even (`"nearest"`, default) or floor (`"floor"`, eq. 9 as
    printed). `x_min` / `x_max` default to the min / max of x (detached), over the whole tensor or,
    with `per_channel`, over each slice `x[c]` (weights `[C_out, ...]`: one range per output
    channel). An explicit range clamps x into it first and the gradient is zero outside it;
    otherwise the gradient is the identity. A constant tensor (range 0) is returned unchanged.
    `bits=None` or `bits >= 32` returns x itself. Half-precision inputs are quantized in float32.
    S is at least `MIN_SCALE` (CPT's floor).

    Example: x = [0, 0.3, 1], bits = 2 -> S = 1/3 -> [0, 1/3, 1].
    """
    check_bits(bits)
    if is_full_precision(bits):
        return x
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {ROUNDINGS}, got {rounding!r}")
    if not x.is_floating_point():
        raise TypeError(f"linear_quantize needs a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"linear_quantize got an empty tensor of shape {tuple(x.shape)}")
    if per_channel and x.dim() == 0:
        raise ValueError("per_channel quantization needs a tensor with a channel dim 0, got a 0-dim tensor")
    if isinstance(x_min, int | float) and isinstance(x_max, int | float) and x_min > x_max:
        raise ValueError(f"x_min must be <= x_max, got x_min={x_min}, x_max={x_max}")
    clip = x_min is not None or x_max is not None
    lo, hi = _range(x, per_channel) if x_min is None or x_max is None else (None, None)
    lo = torch.as_tensor(x_min, device=x.device).detach() if x_min is not None else lo
    hi = torch.as_tensor(x_max, device=x.device).detach() if x_max is not None else hi
    return _LinearQuantizeSTE.apply(x, lo, hi - lo, 2**bits - 1, rounding, zero_point, clip)


@dataclass(frozen=True)
class QuantizerConfig:
    """How `QuantConv2d` / `QuantLinear` quantize (see `linear_quantize`).

    Args:
        weight_per_channel: one range per output channel for weights (CPT); False: one per tensor.
        rounding: "nearest" (CPT, Jacob et al.) or "floor" (eq. 9 as printed).
        zero_point: grid starting at the minimum (CPT, Jacob et al.); False: eq. 9 as printed.
        quantize_input: also fake-quantize the input activations (CQ quantizes weights and activations).
        activation_range: "running" (CPT): eval mode quantizes inputs with the running range kept in
            training; "batch": with each input tensor's own min / max, also in eval mode.
        range_momentum: CPT's momentum m of the running range, running = m * running + (1 - m) * batch.
    """

    weight_per_channel: bool = True
    rounding: Rounding = "nearest"
    zero_point: bool = True
    quantize_input: bool = True
    activation_range: ActivationRange = "running"
    range_momentum: float = 0.9

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"QuantizerConfig.rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.activation_range not in ACTIVATION_RANGES:
            raise ValueError(
                f"QuantizerConfig.activation_range must be one of {ACTIVATION_RANGES}, got "
                f"{self.activation_range!r}"
            )
        if not 0.0 <= self.range_momentum < 1.0:
            raise ValueError(f"QuantizerConfig.range_momentum must be in [0, 1), got {self.range_momentum}")


class QuantLayer:
    """Mixin of the fake-quantized layers: precision `bits` (None = full precision), its config and
    the running range of the input activation (buffers `running_zero_point`, `running_range`: CPT's
    `QuantMeasure`; `range_updates` counts the batches they have seen).

    In eval mode a layer whose running range has seen no batch yet (e.g. just converted by
    `quantize_model`) uses the batch range. A state_dict without these buffers (a plain model's)
    loads with them reset. `measure = True` is CPT's measure mode: the running range becomes the
    mean of the ranges of the batches seen since `reset_ranges()` (momentum n / (n + 1)), in any
    mode, and the input passes unquantized (the weight is still quantized).
    """

    bits: int | None
    config: QuantizerConfig
    weight: Tensor
    running_zero_point: Tensor
    running_range: Tensor
    range_updates: Tensor

    def __init__(
        self, *args, bits: int | None = None, config: QuantizerConfig = QuantizerConfig(), **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)  # the wrapped torch layer's own arguments
        check_bits(bits)
        self.bits = bits
        self.config = config
        self.measure = False
        for name in RANGE_BUFFERS:
            self.register_buffer(name, None)
        self.reset_ranges()

    def reset_ranges(self) -> None:
        """Running zero point and range 0 (CPT's initial value), no batch seen; on the weight's device."""
        device = self.weight.device
        self.running_zero_point = torch.zeros((), device=device)
        self.running_range = torch.zeros((), device=device)
        self.range_updates = torch.zeros((), dtype=torch.long, device=device)

    def quantized_weight(self) -> Tensor:
        """The weight fake-quantized at `self.bits` (per output channel unless configured otherwise)."""
        return linear_quantize(
            self.weight,
            self.bits,
            per_channel=self.config.weight_per_channel,
            rounding=self.config.rounding,
            zero_point=self.config.zero_point,
        )

    def quantized_input(self, input: Tensor) -> Tensor:
        """The input activation fake-quantized at `self.bits` with one range for the whole tensor: the
        batch's (training mode, or `activation_range="batch"`) or the running one (eval mode)."""
        config = self.config
        if not config.quantize_input:
            return input
        if config.activation_range == "batch":
            return linear_quantize(input, self.bits, rounding=config.rounding, zero_point=config.zero_point)
        levels = 2**self.bits - 1
        if self.training or self.measure:
            lo, hi = torch.aminmax(input.detach())
            self._update_ranges(lo, hi - lo)
            if self.measure:
                return input
            return _LinearQuantizeSTE.apply(
                input, lo, hi - lo, levels, config.rounding, config.zero_point, False
            )
        if not self.range_updates:  # never trained at low precision: no running range to use yet
            return linear_quantize(input, self.bits, rounding=config.rounding, zero_point=config.zero_point)
        return _LinearQuantizeSTE.apply(
            input,
            self.running_zero_point,
            self.running_range,
            levels,
            config.rounding,
            config.zero_point,
            True,
        )

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, *args) -> None:
        """Load as the wrapped layer; a state_dict of a plain layer (no range buffers) resets the ranges."""
        names = {prefix + name for name in RANGE_BUFFERS}
        plain = names.isdisjoint(state_dict)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, *args)
        if plain:
            missing_keys[:] = [key for key in missing_keys if key not in names]
            self.reset_ranges()

    @torch.no_grad()
    def _update_ranges(self, lo: Tensor, value_range: Tensor) -> None:
        """CPT's update: running = m * running + (1 - m) * batch (m = n / (n + 1) when measuring)."""
        momentum = (
            self.range_updates / (self.range_updates + 1) if self.measure else self.config.range_momentum
        )
        self.running_zero_point.mul_(momentum).add_(lo * (1 - momentum))
        self.running_range.mul_(momentum).add_(value_range * (1 - momentum))
        self.range_updates += 1

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, bits={self.bits}, {self.config}"


class QuantConv2d(QuantLayer, nn.Conv2d):
    """`nn.Conv2d` whose weight and input are fake-quantized at `self.bits` (settable; None = plain conv).

    Same parameters (names, shapes) as `nn.Conv2d`; the bias stays full precision (as in CPT, whose
    convolutions have no bias). `[B, C_in, H, W] -> [B, C_out, H', W']`.
    """

    @classmethod
    def from_float(cls, conv: nn.Conv2d, config: QuantizerConfig = QuantizerConfig()) -> QuantConv2d:
        """A `QuantConv2d` (full precision) sharing `conv`'s parameter objects; `conv` is left unchanged."""
        quant = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            groups=conv.groups,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
            device="meta",
            config=config,
        )
        quant.weight, quant.bias = conv.weight, conv.bias
        quant.reset_ranges()
        return quant.train(conv.training)

    def forward(self, input: Tensor) -> Tensor:
        """`input[B, C_in, H, W]` -> `[B, C_out, H', W']`, weight and input quantized at `bits` (a plain conv
        at full precision)."""
        if is_full_precision(self.bits):
            return super().forward(input)
        return self._conv_forward(self.quantized_input(input), self.quantized_weight(), self.bias)


class QuantLinear(QuantLayer, nn.Linear):
    """`nn.Linear` whose weight and input are fake-quantized at `self.bits` (settable; None = plain linear).

    Same parameters as `nn.Linear`; the bias stays full precision. `[..., in] -> [..., out]`.
    """

    @classmethod
    def from_float(cls, linear: nn.Linear, config: QuantizerConfig = QuantizerConfig()) -> QuantLinear:
        """A `QuantLinear` (full precision) sharing `linear`'s parameter objects; `linear` is unchanged."""
        quant = cls(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            device="meta",
            config=config,
        )
        quant.weight, quant.bias = linear.weight, linear.bias
        quant.reset_ranges()
        return quant.train(linear.training)

    def forward(self, input: Tensor) -> Tensor:
        """`input[..., in_features]` -> `[..., out_features]`, weight and input quantized at `bits` (a plain
        linear at full precision)."""
        if is_full_precision(self.bits):
            return super().forward(input)
        return nn.functional.linear(self.quantized_input(input), self.quantized_weight(), self.bias)


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def precision_set(spec: str | int) -> tuple[int, ...]:
    """Every precision of a set written as in the paper: "6-16" -> (6, 7, ..., 16); "8" or 8 -> (8,)."""
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = str(spec)
    match = _RANGE.match(spec) if isinstance(spec, str) else None
    if match is None:
        raise ValueError(f"precision set must look like '6-16' (low-high bits) or '8', got {spec!r}")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high:
        raise ValueError(f"precision set {spec!r} needs 1 <= low <= high, got low={low}, high={high}")
    return tuple(range(low, high + 1))


class PrecisionSampler:
    """Draws precisions (bits) uniformly from the integers {low, ..., high} (CQ's precision set).

    CQ draws two precisions q1, q2 per training iteration. They are independent draws (they may be
    equal) unless `distinct=True`. With `seed=None` the draws use torch's global generator (seeded
    by `lightning.seed_everything` / `torch.manual_seed`); a seed gives a private generator.

    Args:
        low, high: the smallest and largest precision in bits (paper: 4-16, 6-16 (default there), 8-16).
        seed: seed of a private `torch.Generator`, or None for the global one.
        distinct: draw q1 != q2 in `sample_pair` (needs at least two precisions).
    """

    def __init__(self, low: int = 4, high: int = 16, seed: int | None = None, distinct: bool = False) -> None:
        self.precisions = precision_set(f"{low}-{high}")
        if distinct and len(self.precisions) < 2:
            raise ValueError(f"distinct=True needs at least two precisions, got the set {low}-{high}")
        self.low, self.high, self.distinct = low, high, distinct
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    @classmethod
    def from_set(cls, spec: str | int, seed: int | None = None, distinct: bool = False) -> PrecisionSampler:
        """A sampler over a set written as "6-16" (see `precision_set`)."""
        precisions = precision_set(spec)
        return cls(precisions[0], precisions[-1], seed=seed, distinct=distinct)

    def sample(self) -> int:
        """One precision drawn uniformly from the set."""
        return self.low + int(torch.randint(len(self.precisions), (1,), generator=self.generator))

    def sample_pair(self) -> tuple[int, int]:
        """(q1, q2): two independent draws, or two different precisions when `distinct`."""
        if self.distinct:
            first, second = torch.randperm(len(self.precisions), generator=self.generator)[:2].tolist()
        else:
            first, second = torch.randint(len(self.precisions), (2,), generator=self.generator).tolist()
        return self.low + first, self.low + second

    def __repr__(self) -> str:
        return f"PrecisionSampler(low={self.low}, high={self.high}, distinct={self.distinct})"
