"""Building blocks of the BEATs Transformer (ssl_lightning.nn): buckets, positions, attention, init,
layer dropout."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from ssl_lightning.nn import transformer
from ssl_lightning.nn.attention import MultiheadSelfAttention
from ssl_lightning.nn.conv_position import ConvPositionalEmbedding
from ssl_lightning.nn.relative_position import RelativePositionBias, relative_position_bucket
from ssl_lightning.nn.transformer import TransformerEncoder, scale_gradient


@pytest.mark.parametrize(
    ("max_distance", "offsets", "buckets"),
    [
        (
            800,
            [0, 1, 79, 80, 100, 400, 799, 5000, -1, -81, -800],
            [0, 161, 239, 240, 247, 295, 319, 319, 1, 80, 159],
        ),
        (1280, [100, 400, 800], [246, 286, 306]),
    ],
)
def test_relative_position_buckets_worked_examples(max_distance, offsets, buckets):
    result = relative_position_bucket(torch.tensor(offsets), num_buckets=320, max_distance=max_distance)
    assert result.tolist() == buckets


def test_relative_position_bias_of_a_subset_uses_the_original_offsets():
    bias = RelativePositionBias(num_heads=3, num_buckets=32, max_distance=40)
    full = bias(torch.arange(50))  # [1, 3, 50, 50]
    keep = torch.tensor([[0, 7, 30, 49], [2, 3, 4, 45]])
    subset = bias(keep)
    assert subset.shape == (2, 3, 4, 4) and full.shape == (1, 3, 50, 50)
    for b in range(2):
        assert torch.equal(subset[b], full[0][:, keep[b]][:, :, keep[b]])
    with pytest.raises(ValueError, match="max_distance must exceed"):
        RelativePositionBias(num_heads=3, num_buckets=32, max_distance=8)


def test_conv_positional_embedding_equals_a_weight_normed_conv_trimmed_by_one():
    torch.manual_seed(0)
    module = ConvPositionalEmbedding(dim=8, kernel_size=6, groups=2)
    with torch.no_grad():
        module.weight_g.mul_(torch.linspace(0.5, 2.0, 6))
        module.bias.normal_()
    x = torch.randn(2, 10, 8)
    norms = module.weight_v.norm(dim=(0, 1), keepdim=True)
    weight = module.weight_v * module.weight_g / norms
    reference = F.conv1d(x.transpose(1, 2), weight, module.bias, padding=3, groups=2)[..., :10]
    assert_close(module(x), F.gelu(reference).transpose(1, 2))


def test_gate_of_a_zero_gate_projection_is_one_and_three_quarters():
    attention = MultiheadSelfAttention(dim=8, num_heads=2, gated_relative_position=True)
    torch.nn.init.zeros_(attention.grep_linear.weight)
    torch.nn.init.zeros_(attention.grep_linear.bias)
    # sigmoid(0) = 1/2 for both gates: m = 1/2 * (1/2 * 1 - 1) + 2 = 1.75
    assert_close(attention.gate(torch.randn(1, 2, 5, 4)), torch.full((1, 2, 5, 1), 1.75))


def test_attention_without_bias_is_plain_softmax_attention():
    torch.manual_seed(0)
    attention = MultiheadSelfAttention(dim=8, num_heads=2).eval()
    x = torch.randn(2, 5, 8)
    q, k, v = (
        proj(x).view(2, 5, 2, 4).transpose(1, 2)
        for proj in (attention.q_proj, attention.k_proj, attention.v_proj)
    )
    probs = (q @ k.transpose(-2, -1) / 2.0).softmax(dim=-1)
    expected = attention.out_proj((probs @ v).transpose(1, 2).reshape(2, 5, 8))
    assert_close(attention(x), expected)


def test_fused_and_official_order_attention_agree_with_bias_gate_and_padding():
    torch.manual_seed(0)
    attention = MultiheadSelfAttention(dim=16, num_heads=4, gated_relative_position=True).eval()
    x = torch.randn(2, 7, 16)
    bias = torch.randn(1, 4, 7, 7)
    padding = torch.zeros(2, 7, dtype=torch.bool)
    padding[1, 4:] = True
    fused = attention(x, padding, bias)
    attention.fused_attn = False
    manual = attention(x, padding, bias)
    assert_close(fused, manual, atol=1e-6, rtol=1e-5)
    # padded keys are ignored: changing their content does not change item 1
    x2 = x.clone()
    x2[1, 4:] = torch.randn(3, 16)
    assert_close(attention(x2, padding, bias)[1, :4], manual[1, :4])


def test_deep_norm_residual_scale_and_init_gains():
    torch.manual_seed(0)
    encoder = TransformerEncoder(
        dim=256, num_layers=3, num_heads=4, ffn_dim=256, conv_pos=4, conv_pos_groups=4
    )
    layer = encoder.layers[0]
    assert layer.residual_scale == pytest.approx(6**0.25)
    beta = 24**-0.25
    # Xavier normal: std = gain * sqrt(2 / (fan_in + fan_out)) = gain / 16 for 256 x 256
    assert layer.self_attn.q_proj.weight.std().item() == pytest.approx(1 / 16, rel=0.03)
    assert layer.self_attn.v_proj.weight.std().item() == pytest.approx(beta / 16, rel=0.03)
    assert layer.self_attn.grep_linear.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(layer.self_attn.q_proj.bias, torch.zeros(256))
    assert torch.equal(layer.self_attn.grep_a, torch.ones(1, 4, 1, 1))


def test_scale_gradient_is_identity_forward_and_scales_backward():
    x = torch.randn(3, requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 0.25))


def test_encoder_rejects_deep_norm_with_pre_ln():
    with pytest.raises(ValueError, match="deep_norm=True needs post-LN"):
        TransformerEncoder(dim=8, num_layers=1, num_heads=2, ffn_dim=8, layer_norm_first=True, deep_norm=True)


def test_deep_norm_alpha_of_the_released_depth():
    encoder = TransformerEncoder(dim=8, num_layers=12, num_heads=2, ffn_dim=8, conv_pos=4, conv_pos_groups=2)
    assert encoder.layers[11].residual_scale == pytest.approx(2.2134, abs=1e-4)  # 24 ** 0.25
    plain = TransformerEncoder(
        dim=8, num_layers=12, num_heads=2, ffn_dim=8, conv_pos=4, deep_norm=False, conv_pos_groups=2
    )
    assert plain.layers[0].residual_scale == 1.0


def layerdrop_encoder(layerdrop: float) -> TransformerEncoder:
    """4 small post-LN DeepNorm layers, no dropout: the layer dropout draws are the only randomness."""
    torch.manual_seed(0)
    return TransformerEncoder(
        dim=8, num_layers=4, num_heads=2, ffn_dim=16, conv_pos=4, conv_pos_groups=2, dropout=0.0,
        attention_dropout=0.0, layerdrop=layerdrop,
    )  # fmt: skip


@pytest.mark.parametrize("processes", [1, 2])
def test_layer_dropout_one_skips_every_layer_in_training_and_none_in_eval(processes, monkeypatch):
    """One process: skipped layers get no gradient (the optimizer leaves them alone, as in the official
    code); under DDP (world size 2) a zero gradient, so DDP needs no find_unused_parameters."""
    monkeypatch.setattr(transformer, "world_size", lambda: processes)
    encoder = layerdrop_encoder(1.0).train()
    x = torch.randn(2, 6, 8, requires_grad=True)
    with torch.no_grad():  # no layer: the output is the input stage alone, LN(x + conv(x))
        no_layers = F.layer_norm(x + encoder.pos_conv(x, None, 6), (8,))
    output = encoder(x)
    assert_close(output, no_layers)
    output.pow(2).sum().backward()
    for name, parameter in encoder.layers.named_parameters():
        if processes == 1:
            assert parameter.grad is None, name
        else:
            assert parameter.grad is not None and torch.equal(parameter.grad, torch.zeros_like(parameter)), (
                name
            )
    assert encoder.pos_conv.weight_v.grad.abs().sum() > 0
    with torch.no_grad():
        assert (encoder.eval()(x) - no_layers).abs().max() > 0.1  # eval mode: every layer runs


def test_layer_dropout_output_equals_the_kept_layers_alone():
    encoder = layerdrop_encoder(0.5).train()
    ran: list[int] = []
    for index, layer in enumerate(encoder.layers):
        layer.register_forward_hook(lambda module, args, output, index=index: ran.append(index))
    x = torch.randn(2, 6, 8)
    steps, layers_run = 50, 0
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(steps):
            ran.clear()
            output = encoder(x)
            pattern = list(ran)
            layers_run += len(pattern)
            kept = copy.deepcopy(encoder)  # the kept layers alone, in order, without layer dropout
            kept.layers = torch.nn.ModuleList(kept.layers[i] for i in pattern)
            kept.layerdrop = 0.0
            assert_close(output, kept(x), msg=f"kept layers {pattern}")
    dropped = 4 * steps - layers_run  # Binomial(200, 0.5): 100 +- 7
    assert 70 <= dropped <= 130, f"{dropped} of {4 * steps} layers dropped with layerdrop 0.5"
