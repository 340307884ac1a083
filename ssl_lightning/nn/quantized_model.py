"""Turn any backbone into a fake-quantized one whose precision can be switched per forward pass.

`quantize_model` swaps every `nn.Conv2d` / `nn.Linear` for a `QuantConv2d` / `QuantLinear` that
shares its parameters (same names, same state_dict), at full precision. `precision(model, bits)`
then runs one network at any precision: Contrastive Quant's branches at q1 and q2 and the full
precision forward of evaluation use the same weights. `measuring_ranges(model)` records the running
activation ranges that eval mode quantizes with (CPT's measure mode), for a model that was not
trained at low precision.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from torch import nn

from ssl_lightning.nn.quantization import (
    QuantConv2d,
    QuantizerConfig,
    QuantLayer,
    QuantLinear,
    check_bits,
)

_QUANT_COUNTERPART: dict[type[nn.Module], type[QuantConv2d] | type[QuantLinear]] = {
    nn.Conv2d: QuantConv2d,
    nn.Linear: QuantLinear,
}


def _quantizable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every plain `nn.Conv2d` / `nn.Linear`, in `named_modules()` order, deduplicated."""
    found = [(name, module) for name, module in model.named_modules() if type(module) in _QUANT_COUNTERPART]
    unconverted = [
        f"{name} ({type(module).__name__})"
        for name, module in model.named_modules()
        if isinstance(module, tuple(_QUANT_COUNTERPART))
        and type(module) not in _QUANT_COUNTERPART
        and not isinstance(module, QuantLayer)
    ]
    if unconverted:
        warnings.warn(
            f"quantize_model leaves these subclasses of nn.Conv2d/nn.Linear at full precision (their "
            f"forward may differ from the parent's): {', '.join(unconverted[:10])}",
            stacklevel=3,
        )
    return found


def quantize_model(
    model: nn.Module,
    skip_first: bool = False,
    skip_last: bool = False,
    config: QuantizerConfig | None = None,
) -> nn.Module:
    """Replace every `nn.Conv2d` / `nn.Linear` of `model` by its fake-quantized counterpart, in place.

    The new layers hold the same `Parameter` objects under the same names (state_dict keys and
    values, and optimizer references, are unchanged) and start at full precision, so the output is
    unchanged until `precision` / `set_precision` lowers it. `skip_first` / `skip_last` keep the first
    / last such layer in `named_modules()` order at full precision (e.g. a ResNet stem, or a
    classifier). `config` sets how they quantize (default `QuantizerConfig()`: CPT's quantizer).
    Subclasses of `nn.Conv2d` / `nn.Linear` are left alone, with a warning. Returns
    `model` (or the new layer when `model` itself is a plain conv / linear layer).
    """
    config = QuantizerConfig() if config is None else config
    found = _quantizable(model)
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.Conv2d or nn.Linear layer to quantize")
    chosen = found[1 if skip_first else 0 : len(found) - 1 if skip_last else len(found)]
    replacements = {
        id(module): _QUANT_COUNTERPART[type(module)].from_float(module, config) for _, module in chosen
    }
    if id(model) in replacements:
        return replacements[id(model)]
    for parent in list(model.modules()):
        for key, child in list(parent._modules.items()):  # named_children() skips repeated children
            if id(child) in replacements:
                setattr(parent, key, replacements[id(child)])
    return model


def quant_layers(model: nn.Module) -> list[QuantLayer]:
    """Every `QuantConv2d` / `QuantLinear` of `model`, in `modules()` order."""
    return [module for module in model.modules() if isinstance(module, QuantLayer)]


def set_precision(model: nn.Module, bits: int | None | Sequence[int | None]) -> None:
    """Set every quant layer of `model` to `bits` (None = full precision), or each to its own entry."""
    layers = quant_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no QuantConv2d/QuantLinear layers; "
            "convert it first with ssl_lightning.nn.quantized_model.quantize_model(model)"
        )
    per_layer = list(bits) if isinstance(bits, Sequence) else [bits] * len(layers)
    if len(per_layer) != len(layers):
        raise ValueError(f"got {len(per_layer)} precisions for the {len(layers)} quant layers of the model")
    for value in per_layer:
        check_bits(value)
    for layer, value in zip(layers, per_layer, strict=True):
        layer.bits = value


@contextmanager
def precision(model: nn.Module, bits: int | None) -> Iterator[nn.Module]:
    """Run `model` with every quant layer at `bits` (None = full precision) inside the block.

    The previous per-layer precisions are restored on exit, also after an exception:

        with precision(encoder, 6):
            f1 = encoder(view1)
    """
    previous = [layer.bits for layer in quant_layers(model)]
    set_precision(model, bits)
    try:
        yield model
    finally:
        set_precision(model, previous)


def has_running_ranges(model: nn.Module) -> bool:
    """Whether every quant layer of `model` that eval mode quantizes with a running range has one."""
    return all(
        int(layer.range_updates) > 0
        for layer in quant_layers(model)
        if layer.config.quantize_input and layer.config.activation_range == "running"
    )


@contextmanager
def measuring_ranges(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, every quant layer of `model` measures its running activation range afresh
    (CPT's measure mode): the mean of the per-tensor min and range of the inputs it sees, in train
    or eval mode, the inputs passing unquantized. Run the calibration batches at the precision to
    evaluate (weights are quantized); BatchNorm and the rest follow the model's own mode:

        with torch.no_grad(), measuring_ranges(encoder):
            for images in batches:
                encoder(images)
    """
    layers = quant_layers(model)
    for layer in layers:
        layer.reset_ranges()
        layer.measure = True
    try:
        yield model
    finally:
        for layer in layers:
            layer.measure = False
