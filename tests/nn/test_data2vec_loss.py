"""data2vec targets and loss: the normalisations (by hand and against torch's F.* forms), the top-K average,
the regression loss oracles, and feature_std in one process and across 2 gloo processes."""

from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from ssl_lightning.nn.losses import (
    batch_norm_features,
    build_targets,
    feature_std,
    instance_norm_over_time,
    layer_norm_features,
    regression_loss,
)

ROOT = 1 / math.sqrt(1 + 1e-5)  # (x - mean) / sqrt(var + eps) for values at mean +- 1


def test_instance_norm_by_hand_and_with_padding():
    """Time steps 1, 3 of one channel: mean 2, biased variance 1 -> -+1 / sqrt(1 + 1e-5); a padded 100
    takes no part and comes out 0."""
    x = torch.tensor([[[1.0], [3.0], [100.0]]])
    padding = torch.tensor([[False, False, True]])
    assert torch.allclose(instance_norm_over_time(x, padding), torch.tensor([[[-ROOT], [ROOT], [0.0]]]))
    assert torch.allclose(instance_norm_over_time(x[:, :2]), torch.tensor([[[-ROOT], [ROOT]]]))


def test_instance_norm_has_zero_mean_and_unit_variance_per_sample_and_channel():
    """Oracle 2, and F.instance_norm on [B, D, N] when nothing is padded."""
    x = 3 * torch.randn(4, 50, 6, generator=torch.Generator().manual_seed(0)) + 5
    out = instance_norm_over_time(x)
    assert torch.allclose(out.mean(dim=1), torch.zeros(4, 6), atol=1e-5)
    assert torch.allclose(out.var(dim=1, unbiased=False), torch.ones(4, 6), atol=1e-4)
    assert torch.allclose(out, F.instance_norm(x.transpose(1, 2)).transpose(1, 2), atol=1e-5)


def test_layer_norm_by_hand():
    x = torch.tensor([[[1.0, 3.0], [10.0, 14.0]]])  # means 2 and 12, variances 1 and 4
    expected = torch.tensor([[[-ROOT, ROOT], [-2 / math.sqrt(4 + 1e-5), 2 / math.sqrt(4 + 1e-5)]]])
    assert torch.allclose(layer_norm_features(x), expected)


def test_batch_norm_pools_the_valid_tokens_of_the_whole_batch():
    """Tokens 1, 3 (sample 0) and 5 (sample 1, then padding): mean 3, biased variance 8/3."""
    x = torch.tensor([[[1.0], [3.0]], [[5.0], [-40.0]]])
    padding = torch.tensor([[False, False], [False, True]])
    std = math.sqrt(8 / 3 + 1e-5)
    expected = torch.tensor([[[-2 / std], [0.0]], [[2 / std], [0.0]]])
    assert torch.allclose(batch_norm_features(x, padding), expected, atol=1e-6)
    y = torch.randn(3, 7, 4, generator=torch.Generator().manual_seed(1))
    reference = F.batch_norm(y.transpose(1, 2), None, None, training=True).transpose(1, 2)
    assert torch.allclose(batch_norm_features(y), reference, atol=1e-5)


def test_identical_layers_give_the_single_normalised_layer():
    """Oracle 3, for every per-layer normalisation."""
    layer = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(
        build_targets([layer] * 3, 3, "instance"), instance_norm_over_time(layer), atol=1e-6
    )
    assert torch.allclose(build_targets([layer] * 3, 3, "layer"), layer_norm_features(layer), atol=1e-6)
    assert torch.allclose(build_targets([layer] * 3, 3, "batch"), batch_norm_features(layer), atol=1e-6)


def test_targets_average_the_last_top_k_layers():
    """Without normalisation: the mean of the last 2 of [100, 1, 3] is 2; the first layer is ignored."""
    layers = [torch.full((1, 2, 3), v) for v in (100.0, 1.0, 3.0)]
    assert torch.equal(build_targets(layers, 2, None), torch.full((1, 2, 3), 2.0))


def test_final_norms_apply_in_the_given_order():
    g = torch.Generator().manual_seed(3)
    layers = [torch.randn(2, 8, 5, generator=g) for _ in range(3)]
    mean = sum(instance_norm_over_time(layer) for layer in layers[1:]) / 2
    layer_then_instance = instance_norm_over_time(layer_norm_features(mean))
    instance_then_layer = layer_norm_features(instance_norm_over_time(mean))
    assert torch.allclose(
        build_targets(layers, 2, "instance", ("layer", "instance")), layer_then_instance, atol=1e-5
    )
    assert torch.allclose(
        build_targets(layers, 2, "instance", ("instance", "layer")), instance_then_layer, atol=1e-5
    )
    assert not torch.allclose(layer_then_instance, instance_then_layer, atol=1e-3)


def test_targets_are_float32_without_gradient_and_respect_padding():
    g = torch.Generator().manual_seed(4)
    layers = [torch.randn(2, 6, 4, generator=g).bfloat16().requires_grad_(True) for _ in range(2)]
    target = build_targets(layers, 2)
    assert target.dtype == torch.float32 and not target.requires_grad
    padding = torch.zeros(2, 6, dtype=torch.bool)
    padding[1, 4:] = True
    padded = build_targets(layers, 2, padding_mask=padding)
    alone = build_targets([layer[1:, :4] for layer in layers], 2)
    assert torch.allclose(padded[1:, :4], alone, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top_k": 3}, r"top_k must be in \[1, 2\]"),
        ({"layer_norm": "group"}, "layer_norm must be one of"),
        ({"final_norm": ("batch",)}, "final_norm entries must be among"),
    ],
)
def test_build_targets_rejects_bad_arguments(kwargs, match):
    args = {"layer_outputs": [torch.zeros(1, 2, 3)] * 2, "top_k": 2} | kwargs
    with pytest.raises(ValueError, match=match):
        build_targets(**args)


def test_l2_loss_scale_is_one_over_sqrt_dim():
    """Oracle 4: D=768, prediction = target + 1: 768 / sqrt(768) = sqrt(768) = 27.71 per token."""
    target = torch.randn(3, 768, generator=torch.Generator().manual_seed(5))
    loss = regression_loss(target + 1, target)
    assert loss.shape == (3,)
    assert torch.allclose(loss, torch.full((3,), math.sqrt(768)), atol=1e-3)


@pytest.mark.parametrize(("difference", "expected"), [(1.0, 0.25), (3.0, 2.0), (-3.0, 2.0), (0.0, 0.0)])
def test_smooth_l1_with_beta_2(difference, expected):
    """Oracle 5: 0.5 d^2 / 2 for |d| < 2, |d| - 1 otherwise."""
    loss = regression_loss(torch.tensor([[difference]]), torch.zeros(1, 1), beta=2.0, scale=1.0)
    assert loss.item() == pytest.approx(expected)


def test_dim_scale_is_the_feature_mean_and_a_number_scales_directly():
    prediction = torch.tensor([[1.0, 2.0, 0.0, 3.0]])
    # squared errors 1, 4, 0, 9: sum 14
    assert regression_loss(prediction, torch.zeros(1, 4), scale="dim").item() == pytest.approx(14 / 4)
    assert regression_loss(prediction, torch.zeros(1, 4), scale=1).item() == pytest.approx(14)
    assert regression_loss(prediction, torch.zeros(1, 4)).item() == pytest.approx(14 / 2)


def test_regression_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="must share a shape"):
        regression_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="scale must be 'sqrt_dim', 'dim' or a number"):
        regression_loss(torch.zeros(2, 3), torch.zeros(2, 3), scale="mean")
    with pytest.raises(ValueError, match="beta must be >= 0"):
        regression_loss(torch.zeros(2, 3), torch.zeros(2, 3), beta=-1.0)


def test_feature_std_by_hand():
    """Tokens (0, 0), (2, 4): unbiased variances 2 and 8 -> (sqrt(2 + 1e-6) + sqrt(8 + 1e-6)) / 2."""
    value = feature_std(torch.tensor([[0.0, 0.0], [2.0, 4.0]]))
    assert value.dtype == torch.float32 and value.dim() == 0
    assert value.item() == pytest.approx((math.sqrt(2 + 1e-6) + math.sqrt(8 + 1e-6)) / 2, rel=1e-6)


def test_feature_std_of_constant_features_is_the_floor():
    assert feature_std(torch.ones(10, 3)).item() == pytest.approx(1e-3, rel=1e-4)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        feature_std(torch.ones(1, 3))


# ---- feature_std across 2 gloo processes -------------------------------------------------------------------

SIZES = [3, 5]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def all_tokens() -> torch.Tensor:
    return 2 * torch.randn(sum(SIZES), 6, generator=torch.Generator().manual_seed(6)) + 1


def worker(process: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=process, world_size=2)
    try:
        start = sum(SIZES[:process])
        torch.save(
            feature_std(all_tokens()[start : start + SIZES[process]]), Path(out_dir) / f"rank{process}.pt"
        )
    finally:
        dist.destroy_process_group()


@pytest.mark.distributed
def test_feature_std_over_ranks_equals_one_process_on_all_tokens(tmp_path):
    mp.spawn(worker, args=(free_port(), str(tmp_path)), nprocs=2, join=True)
    values = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    single = torch.sqrt(all_tokens().var(dim=0) + 1e-6).mean()
    assert values[0].item() == values[1].item()
    assert values[0].item() == pytest.approx(single.item(), rel=1e-6)
    shard = torch.sqrt(all_tokens()[:3].var(dim=0) + 1e-6).mean()
    assert abs(values[0].item() - shard.item()) > 1e-3  # a rank alone would see a different value
