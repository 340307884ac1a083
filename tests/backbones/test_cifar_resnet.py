import warnings

import pytest
import timm
import torch
from torch import nn

from ssl_lightning.backbones import CifarResNet, CifarResNetModel, TimmImageEncoder
from ssl_lightning.backbones.cifar_resnet import ZeroPadShortcut, blocks_per_stage
from ssl_lightning.nn.quantized_model import precision, quant_layers, quantize_model


def he_et_al_parameters(depth: int, shortcut: str, num_classes: int = 0) -> int:
    """Parameter count written out from the architecture: 3x3 convs without bias, BN weight + bias."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # stem conv + BN
    for c in (16, 32, 64):
        c_in = 16 if c == 16 else c // 2
        total += 9 * c_in * c + 9 * c * c + 4 * c  # first block
        total += (n - 1) * (2 * 9 * c * c + 4 * c)
        if c_in != c and shortcut == "projection":
            total += c_in * c + 2 * c  # 1x1 conv + BN
    return total + (64 * num_classes + num_classes if num_classes else 0)


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_contrastive_quant_depths_are_the_basic_block_family():
    assert [blocks_per_stage(d) for d in (74, 110, 152)] == [12, 18, 25]
    for depth in (29, 75, 156, 2):  # 29 = 9n + 2 (bottleneck); 156 is the paper's typo
        with pytest.raises(ValueError, match="6n \\+ 2"):
            blocks_per_stage(depth)


def test_parameter_counts_match_he_et_al():
    # He et al. 2016, Table 6: ResNet-20 0.27M and ResNet-110 1.7M parameters (option A shortcuts)
    assert count(CifarResNetModel(20, num_classes=10, shortcut="zero_pad")) == 269_722
    assert he_et_al_parameters(20, "zero_pad", num_classes=10) == 269_722
    resnet110 = count(CifarResNet(110, shortcut="zero_pad"))
    assert resnet110 == he_et_al_parameters(110, "zero_pad") == 1_727_312
    assert resnet110 == pytest.approx(1.7e6, rel=0.02)
    for depth in (74, 110, 152):
        assert count(CifarResNet(depth)) == he_et_al_parameters(depth, "projection")
    assert count(CifarResNet(110)) - resnet110 == 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64


def test_encoder_tokens_are_the_8x8_map_of_64_channels():
    encoder = CifarResNet(20).eval()  # the map size does not depend on the depth
    features, mask = encoder(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 64, 64) and mask is None
    assert encoder.embed_dim == 64
    assert CifarResNet(8, width=4).embed_dim == 16


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.arange(32.0).reshape(1, 2, 4, 4)
    out = ZeroPadShortcut(out_channels=4, stride=2)(x)
    assert out.shape == (1, 4, 2, 2)
    assert out[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]
    assert out[0, 1].tolist() == [[16.0, 18.0], [24.0, 26.0]]
    assert out[0, 2:].abs().sum() == 0


def test_timm_names_build_the_cifar_resnets():
    assert {"cifar_resnet74", "cifar_resnet110", "cifar_resnet152"} <= set(timm.list_models("cifar_resnet*"))
    model = timm.create_model("cifar_resnet74", num_classes=100)
    assert model.depth == 74 and model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    encoder = TimmImageEncoder("cifar_resnet152")  # cifar_stem=True leaves a CIFAR model unchanged
    assert count(encoder) == count(CifarResNet(152))
    assert encoder.model.conv1.kernel_size == (3, 3) and encoder.model.conv1.stride == (1, 1)
    with pytest.raises(ValueError, match="pretrained=False"):
        timm.create_model("cifar_resnet110", pretrained=True)


def test_unsupported_shortcut_and_pool_are_rejected():
    with pytest.raises(ValueError, match="shortcut='option_c'"):
        CifarResNetModel(20, shortcut="option_c")
    with pytest.raises(ValueError, match="global_pool='max'"):
        CifarResNetModel(20, global_pool="max")


@pytest.mark.parametrize("shortcut", ["projection", "zero_pad"])
def test_quantize_model_converts_every_layer_and_keeps_full_precision_output(shortcut):
    torch.manual_seed(0)
    model = CifarResNetModel(8, num_classes=10, width=4, shortcut=shortcut).eval()
    layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    assert layers == 1 + 6 + (2 if shortcut == "projection" else 0) + 1  # stem, 3 blocks x 2, shortcuts, fc
    images = torch.randn(2, 3, 32, 32)
    before = model(images)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped nn.Conv2d subclass would warn
        quantize_model(model)
    assert len(quant_layers(model)) == layers
    assert torch.equal(model(images), before)
    with precision(model, 2):
        assert not torch.allclose(model(images), before)
