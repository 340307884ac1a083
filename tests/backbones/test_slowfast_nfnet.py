import pytest
import torch
from timm.layers import ScaledStdConv2d
from torch import nn

from ssl_lightning.backbones import SlowfastNFNet
from ssl_lightning.backbones.slowfast_nfnet import ALPHA, NFBlock

TINY = {"width_multiplier": 0.125, "depths": [1, 1, 1, 1]}


def full_size_on_meta(**kwargs) -> SlowfastNFNet:
    """The full model without allocating or computing anything (shapes and parameter counts only)."""
    with torch.device("meta"):
        return SlowfastNFNet(**kwargs)


@pytest.fixture(scope="module")
def full_size() -> SlowfastNFNet:
    return full_size_on_meta()


def output_sizes(model: SlowfastNFNet, spec: torch.Tensor, modules: dict[str, nn.Module]) -> dict[str, tuple]:
    """(channels, time, frequency) of each named module's output in `encode_spectrogram(spec)`."""
    sizes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, out, key=key: sizes.__setitem__(key, tuple(out.shape[1:])))
        for key, module in modules.items()
    ]
    model.encode_spectrogram(spec)
    for hook in hooks:
        hook.remove()
    return sizes


def test_table_5_feature_sizes_on_a_400_x_128_spectrogram(full_size):
    model = full_size
    modules = {}
    for name in ("slow", "fast"):
        pathway = getattr(model, name)
        modules |= {f"{name}.stem{i + 1}": pathway.stem[2 * i] for i in range(4)}
        modules |= {f"{name}.block{s + 1}": pathway.blocks[end - 1] for s, end in enumerate((1, 3, 9, 12))}
    sizes = output_sizes(model, torch.zeros(1, 400, 128, device="meta"), modules)
    assert sizes == {
        "slow.stem1": (16, 50, 64),
        "slow.stem2": (32, 50, 64),
        "slow.stem3": (64, 50, 64),
        "slow.stem4": (128, 25, 32),
        "slow.block1": (256, 25, 32),
        "slow.block2": (512, 25, 16),
        "slow.block3": (1536, 25, 8),
        "slow.block4": (1536, 25, 4),
        "fast.stem1": (2, 200, 64),
        "fast.stem2": (4, 200, 64),
        "fast.stem3": (8, 200, 64),
        "fast.stem4": (16, 100, 32),
        "fast.block1": (32, 100, 32),
        "fast.block2": (64, 100, 16),
        "fast.block3": (192, 100, 8),
        "fast.block4": (192, 100, 4),
    }
    features, _ = model.encode_spectrogram(torch.zeros(1, 400, 128, device="meta"))
    assert features.shape == (1, 100, 1728) and model.embed_dim == 1728


def test_table_5_kernels_groups_and_fusion(full_size):
    model = full_size
    stem_kernels = {
        name: [getattr(model, name).stem[2 * i].kernel_size for i in range(4)] for name in ("slow", "fast")
    }
    assert stem_kernels == {"slow": [(1, 3), (1, 3), (1, 3), (3, 3)], "fast": [(3, 3)] * 4}
    assert [len(model.slow.blocks), len(model.fast.blocks)] == [12, 12]
    first = (0, 1, 3, 9)
    for name, widths, kernels, group in (
        ("slow", (128, 256, 768, 768), [(1, 1), (1, 1), (3, 1), (3, 1)], 128),
        ("fast", (16, 32, 96, 96), [(3, 1)] * 4, 16),
    ):
        blocks = [getattr(model, name).blocks[i] for i in first]
        assert [b.conv1.out_channels for b in blocks] == list(widths)
        assert [b.conv1.kernel_size for b in blocks] == kernels
        assert {b.conv1b.kernel_size for b in blocks} == {(1, 3)}  # the separable half of the 3x3 conv
        assert [b.conv1.groups for b in blocks] == [w // group for w in widths] == [1, 2, 6, 6]
        assert [b.conv1.stride for b in blocks] == [(1, 1), (1, 2), (1, 2), (1, 2)]
    assert [f.conv.out_channels for f in model.fuse] == [64, 256, 512, 1024]
    assert {(f.conv.kernel_size, f.conv.stride) for f in model.fuse} == {((7, 1), (4, 1))}
    assert [model.slow.blocks[i].conv0.in_channels for i in first] == [
        128 + 64,
        256 + 256,
        512 + 512,
        1536 + 1024,
    ]


def test_parameter_counts_with_and_without_the_final_conv(full_size):
    def count(model):
        return sum(p.numel() for p in model.parameters())

    assert count(full_size) == 58_171_662  # Table 5, 1728-d
    official = full_size_on_meta(final_conv_mult=2)
    assert official.embed_dim == 3456
    assert count(official) == 62_970_894  # the paper's Table 2 says 63m


def test_stochastic_depth_rates_rise_linearly_to_0_1():
    model = SlowfastNFNet(**TINY | {"depths": [1, 2, 6, 3]})
    for pathway in (model.slow, model.fast):
        assert [b.drop_path.drop_prob for b in pathway.blocks] == pytest.approx(
            [0.1 * i / 12 for i in range(12)]
        )
        assert [b.beta for b in pathway.blocks][:4] == pytest.approx(
            [1.0, (1 + ALPHA**2) ** -0.5, (1 + ALPHA**2) ** -0.5, (1 + 2 * ALPHA**2) ** -0.5]
        )


def test_stochastic_depth_drops_whole_samples_only_in_training():
    torch.manual_seed(0)
    block = NFBlock(8, 8, (3, 1), (1, 1), 4, beta=1.0, drop_path_rate=0.5, normalizer="none")
    nn.init.ones_(block.skip_gain)
    x = torch.randn(1, 8, 5, 6).expand(64, -1, -1, -1)
    kept = block.eval()(x)
    assert torch.equal(block(x), kept)
    assert not torch.allclose(kept, x)
    out = block.train()(x)
    dropped = (out == x).flatten(1).all(dim=1)
    survived = torch.isclose(out, kept, atol=1e-6).flatten(1).all(dim=1)
    # each sample is either the shortcut or the eval output (kept branches are not rescaled)
    assert torch.equal(dropped, ~survived)
    assert 10 < dropped.sum() < 54


@pytest.mark.parametrize(
    ("normalizer", "layer"),
    [("none", None), ("batch", nn.BatchNorm2d), ("layer", nn.GroupNorm), ("instance", nn.InstanceNorm2d)],
)
def test_each_normalizer(normalizer, layer):
    torch.manual_seed(0)
    model = SlowfastNFNet(**TINY, normalizer=normalizer, stochastic_depth=0.0).train()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d))]
    se_convs = 2 * 2 * 4  # two 1x1 convs per squeeze-excite, one SE per block, 4 blocks per pathway
    if layer is None:
        assert not norms and sum(isinstance(m, ScaledStdConv2d) for m in convs) == len(convs) - se_convs
    else:
        assert not any(isinstance(m, ScaledStdConv2d) for m in convs)
        assert len(norms) == len(convs) - se_convs and all(type(m) is layer for m in norms)
    if layer is nn.GroupNorm:
        assert {m.num_groups for m in norms} == {1}
    wave = torch.randn(3, 8000)
    together = model(wave)[0]
    assert together.shape == (3, 12, model.embed_dim) and torch.isfinite(together).all()
    alone = model(wave[:1])[0]
    # only BatchNorm (in training) mixes the examples of a batch
    assert torch.allclose(alone, together[:1], atol=1e-5) is (normalizer != "batch")


def test_forward_is_encode_spectrogram_of_spectrogram():
    torch.manual_seed(0)
    model = SlowfastNFNet(**TINY).eval()
    wave = torch.randn(2, 4000)
    padding = torch.zeros(2, 4000, dtype=torch.bool)
    assert torch.equal(model(wave)[0], model.encode_spectrogram(model.spectrogram(wave))[0])
    padding[1, 2000:] = True
    expected = model.encode_spectrogram(model.spectrogram(wave, padding))[0]
    assert torch.equal(model(wave, padding)[0], expected)


def test_spectrogram_is_standardised_per_example_over_real_frames():
    model = SlowfastNFNet(**TINY)
    wave = torch.randn(2, 16000) * torch.tensor([[0.01], [1.0]])
    spec = model.spectrogram(wave)
    assert spec.shape == (2, 98, 80)  # 1 + (16000 - 400) // 160 frames of 80 mels
    assert torch.allclose(spec.mean(dim=(1, 2)), torch.zeros(2), atol=1e-4)
    assert torch.allclose(spec.std(dim=(1, 2), unbiased=False), torch.ones(2), atol=1e-4)
    padding = torch.zeros(2, 16000, dtype=torch.bool)
    padding[1, 8000:] = True  # frames 50.. start in the padding
    masked = model.spectrogram(wave, padding)
    assert masked[1, 50:].abs().sum() == 0
    real = masked[1, :50]
    assert real.mean().abs() < 1e-4 and (real.std(unbiased=False) - 1).abs() < 1e-4
    assert torch.allclose(masked[0], spec[0])


def test_padding_mask_maps_to_tokens_of_four_frames():
    model = SlowfastNFNet(**TINY).eval()
    padding = torch.zeros(2, 16000, dtype=torch.bool)
    assert model(torch.randn(2, 16000), padding)[1] is None
    padding[1, 8000:] = True  # frames 50..97 are padding; token j covers frames 4j..4j+3
    features, mask = model(torch.randn(2, 16000), padding)
    assert features.shape[:2] == mask.shape == (2, 25)
    assert not mask[0].any()
    assert mask[1].tolist() == [False] * 13 + [True] * 12


def test_odd_lengths_keep_slow_and_fast_aligned():
    model = SlowfastNFNet(**TINY).eval()
    features, _ = model.encode_spectrogram(torch.randn(1, 37, 80))
    assert features.shape == (1, 10, model.embed_dim)  # ceil(37 / 4) tokens
    # the slow half of each token is its slow time step's: steps of 4 fast tokens share it
    slow = features[0, :, model.fast.out_channels :]
    assert (
        torch.equal(slow[0], slow[3]) and torch.equal(slow[8], slow[9]) and not torch.equal(slow[3], slow[4])
    )


def test_group_matcher_numbers_blocks_and_stages():
    model = SlowfastNFNet(width_multiplier=0.125, depths=[1, 2, 1, 1], final_conv_mult=2)
    fine, coarse = model.group_matcher(), model.group_matcher(coarse=True)
    cases = {
        "slow.stem.0.weight": (0, 0),
        "fast.stem.6.gain": (0, 0),
        "fuse.0.conv.weight": (1, 1),
        "fast.blocks.0.conv0.weight": (1, 1),
        "fuse.1.conv.bias": (2, 2),
        "slow.blocks.2.skip_gain": (3, 2),
        "fuse.2.conv.weight": (4, 3),
        "fast.blocks.4.se.fc1.weight": (5, 4),
        "slow.final_conv.weight": (6, 5),
    }
    names = dict(model.named_parameters())
    for name, (fine_id, coarse_id) in cases.items():
        assert name in names
        assert (fine(name), coarse(name)) == (fine_id, coarse_id), name
    assert {fine(name) for name in names} == set(range(7))


def test_bad_arguments_raise():
    for kwargs, message in (
        ({"variant": "f1"}, "variant='f1'"),
        ({"normalizer": "group"}, "normalizer='group'"),
        ({"depths": [1, 2, 3]}, "depths"),
        ({"stochastic_depth": 1.0}, "stochastic_depth"),
        ({"width_multiplier": 1 / 16}, "fan-in 1"),
        ({"width_multiplier": 0.3}, "multiple of the group size"),
    ):
        with pytest.raises(ValueError, match=message):
            SlowfastNFNet(**kwargs)
    with pytest.raises(ValueError, match="spec must be"):
        SlowfastNFNet(**TINY).encode_spectrogram(torch.zeros(1, 1, 40, 80))
