import warnings

import pytest
import torch

from ssl_lightning.backbones import TimmImageEncoder
from ssl_lightning.nn.quantized_model import precision, quant_layers, quantize_model

TINY_RESNET = {"channels": [8, 16, 32, 64], "stem_width": 8}


@pytest.mark.parametrize("name", ["mobilenetv2_100", "mobilenetv2_050"])
def test_mobilenetv2_cifar_stem_sets_stride_1_in_the_stem_and_the_first_strided_stage(name):
    model = TimmImageEncoder(name, cifar_stem=True).model
    assert model.conv_stem.stride == (1, 1)
    assert model.blocks[1][0].conv_dw.stride == (1, 1)
    assert [model.blocks[i][0].conv_dw.stride for i in (2, 3, 5)] == [(2, 2)] * 3  # later stages keep theirs


def test_mobilenetv2_cifar_stem_gives_a_4x4_map_of_1280_channels():
    encoder = TimmImageEncoder("mobilenetv2_050", cifar_stem=True).eval()
    features, mask = encoder(torch.randn(1, 3, 32, 32))
    assert features.shape == (1, 16, 1280) and mask is None  # total stride 8, as CPT's CIFAR MobileNetV2
    plain = TimmImageEncoder("mobilenetv2_050", cifar_stem=False).eval()
    assert plain(torch.randn(1, 3, 32, 32))[0].shape == (1, 1, 1280)  # total stride 32


def test_resnet_cifar_stem_is_unchanged():
    encoder = TimmImageEncoder("resnet18", cifar_stem=True, model_kwargs=TINY_RESNET).eval()
    assert encoder.model.conv1.kernel_size == (3, 3) and encoder.model.conv1.stride == (1, 1)
    assert encoder(torch.randn(2, 3, 32, 32))[0].shape == (2, 16, 64)


@pytest.mark.parametrize("name", ["efficientnet_b0", "mobilenetv3_small_050"])
def test_cifar_stem_on_an_unsupported_model_raises(name):
    with pytest.raises(ValueError, match=f"{name!r}.*cifar_stem=False"):
        TimmImageEncoder(name, cifar_stem=True)
    assert TimmImageEncoder(name, cifar_stem=False).embed_dim > 0


@pytest.mark.parametrize(
    ("name", "kwargs"), [("mobilenetv2_050", {}), ("resnet18", TINY_RESNET)], ids=["mobilenetv2", "resnet18"]
)
def test_quantize_model_converts_every_layer_and_keeps_full_precision_output(name, kwargs):
    torch.manual_seed(0)
    encoder = TimmImageEncoder(name, cifar_stem=True, model_kwargs=kwargs).eval()
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in encoder.modules())
    images = torch.randn(1, 3, 32, 32)
    before = encoder(images)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped nn.Conv2d subclass would warn
        quantize_model(encoder)
    assert len(quant_layers(encoder)) == convs
    assert quant_layers(encoder)[0].stride == (1, 1)  # the CIFAR stem survives the conversion
    assert torch.equal(encoder(images)[0], before)
    with precision(encoder, 2):
        assert not torch.allclose(encoder(images)[0], before)
