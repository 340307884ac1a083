import copy

import pytest
import timm
import torch
import torchvision
from torch import nn

from ssl_lightning.nn.quantization import RANGE_BUFFERS, QuantConv2d, QuantizerConfig, QuantLinear
from ssl_lightning.nn.quantized_model import (
    has_running_ranges,
    measuring_ranges,
    precision,
    quant_layers,
    quantize_model,
    set_precision,
)


def resnet18(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False, num_classes=0).eval()


@pytest.fixture(scope="module")
def plain_resnet() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A plain timm resnet18 (eval mode), an input `[1, 3, 32, 32]` and its output `[1, 512]`."""
    model = resnet18()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model, x, model(x)


def test_timm_resnet18_full_precision_is_exact_and_4_bits_differs(plain_resnet) -> None:
    plain, x, reference = plain_resnet
    model = copy.deepcopy(plain)
    parameters = dict(model.named_parameters())
    state = model.state_dict()
    assert quantize_model(model) is model
    layers = quant_layers(model)
    assert len(layers) == 20 and all(isinstance(layer, QuantConv2d) for layer in layers)
    assert not any(type(m) is nn.Conv2d for m in model.modules())
    assert all(parameters[name] is p for name, p in model.named_parameters())
    ranges = {
        f"{name}.{buffer}" for name, m in model.named_modules() if m in layers for buffer in RANGE_BUFFERS
    }
    assert set(model.state_dict()) == set(state) | ranges  # + each layer's running activation range
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    with torch.no_grad():
        assert torch.equal(model(x), reference)
        with precision(model, 4):
            low = model(x)
        with precision(model, 16):
            high = model(x)
        assert not torch.allclose(low, reference, atol=1e-2)
        assert (high - reference).abs().max() < (low - reference).abs().max() / 50
        assert torch.equal(model(x), reference)


def test_state_dict_round_trip_with_the_plain_model(plain_resnet) -> None:
    plain, x, reference = plain_resnet
    quantized = quantize_model(copy.deepcopy(plain))
    other_plain = resnet18(seed=1)
    missing, unexpected = other_plain.load_state_dict(quantized.state_dict(), strict=False)
    assert not missing and {key.rpartition(".")[2] for key in unexpected} == set(RANGE_BUFFERS)
    other_quantized = quantize_model(resnet18(seed=2))
    other_quantized.load_state_dict(plain.state_dict(), strict=True)
    with torch.no_grad():
        assert torch.equal(other_plain(x), reference)
        with precision(other_quantized, 5), precision(quantized, 5):
            assert torch.equal(other_quantized(x), quantized(x))


def test_measuring_ranges_records_the_mean_range_of_every_quant_layer() -> None:
    model = quantize_model(nn.Sequential(nn.Linear(3, 3, bias=False), nn.Linear(3, 3, bias=False)))
    for layer in model:
        nn.init.eye_(layer.weight)  # per channel, each row's range is (0, 1): Q(w) = w
    set_precision(model, 2)
    assert not has_running_ranges(model)
    with torch.no_grad(), measuring_ranges(model):
        model(torch.tensor([[0.0, 0.4, 0.9]]))
        model(torch.tensor([[-1.0, 0.0, 2.0]]))
    assert has_running_ranges(model) and not any(layer.measure for layer in model)
    for layer in model:  # the inputs pass unquantized: both layers see both batches as they are
        assert (layer.running_zero_point.item(), layer.running_range.item()) == pytest.approx((-0.5, 1.95))


def test_torchvision_mobilenet_v2() -> None:
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(num_classes=10, dropout=0.0)  # train mode: batch statistics
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    reference = model(x)
    keys = list(model.state_dict())
    quantize_model(model)
    assert [key for key in model.state_dict() if key.rpartition(".")[2] not in RANGE_BUFFERS] == keys
    layers = quant_layers(model)
    assert sum(isinstance(layer, QuantConv2d) for layer in layers) == 52
    assert sum(isinstance(layer, QuantLinear) for layer in layers) == 1
    assert torch.equal(model(x), reference)
    with precision(model, 4):
        low = model(x)
    assert not torch.allclose(low, reference, atol=1e-2)
    with precision(model, 4):
        low.sum().backward()  # the graph built at 4 bits reaches every weight
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_precision_context_restores_also_after_errors(plain_resnet) -> None:
    model = quantize_model(copy.deepcopy(plain_resnet[0]))
    set_precision(model, [None] * 19 + [7])
    with precision(model, 4):
        assert all(layer.bits == 4 for layer in quant_layers(model))
        with precision(model, None):
            assert all(layer.bits is None for layer in quant_layers(model))
        assert all(layer.bits == 4 for layer in quant_layers(model))
    assert [layer.bits for layer in quant_layers(model)] == [None] * 19 + [7]
    with pytest.raises(RuntimeError, match="inside"), precision(model, 6):
        raise RuntimeError("inside")
    assert [layer.bits for layer in quant_layers(model)] == [None] * 19 + [7]


def test_skip_first_and_last_and_config(plain_resnet) -> None:
    model = quantize_model(
        copy.deepcopy(plain_resnet[0]),
        skip_first=True,
        skip_last=True,
        config=QuantizerConfig(weight_per_channel=False),
    )
    assert type(model.conv1) is nn.Conv2d
    assert type(model.layer4[1].conv2) is nn.Conv2d
    assert isinstance(model.layer1[0].conv1, QuantConv2d)
    assert len(quant_layers(model)) == 18
    assert all(not layer.config.weight_per_channel for layer in quant_layers(model))


def test_shared_layers_root_layers_and_subclasses() -> None:
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    quantize_model(model)
    assert isinstance(model[0], QuantLinear) and model[0] is model[2]
    assert isinstance(quantize_model(nn.Conv2d(1, 1, 1)), QuantConv2d)

    class Scaled(nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    with pytest.warns(UserWarning, match=r"0 \(Scaled\)"):
        mixed = quantize_model(nn.Sequential(Scaled(2, 2), nn.Linear(2, 2)))
    assert type(mixed[0]) is Scaled and isinstance(mixed[1], QuantLinear)


def test_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="no nn.Conv2d or nn.Linear"):
        quantize_model(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="quantize_model"), precision(nn.Linear(2, 2), 4):
        pass
    model = quantize_model(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="2 precisions for the 2 quant layers|got 3 precisions"):
        set_precision(model, [4, 4, 4])
    with pytest.raises(ValueError, match="bits must be >= 1"):
        set_precision(model, 0)
    assert [layer.bits for layer in quant_layers(model)] == [None, None]
