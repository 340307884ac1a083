"""data2vec targets and loss (fairseq `examples/data2vec/models/data2vec2.py`: `make_targets`, `d2v_loss`,
`compute_var`; the 1.0 models `data2vec_audio.py`, `data2vec_text.py`, `data2vec_vision.py` build targets the
same way).

Targets: the teacher's top-K block outputs, each normalised, averaged, then optionally normalised again.
Loss: a per-token regression (squared error or smooth L1) summed over features and scaled; the caller
averages it over the masked tokens. `feature_std` is the collapse monitor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from ssl_lightning.nn.distributed import is_distributed

EPS = 1e-5  # fairseq's F.instance_norm / F.batch_norm / F.layer_norm defaults
LAYER_NORMS = ("instance", "layer", "batch")
FINAL_NORMS = ("layer", "instance")


def _valid_weights(x: Tensor, padding_mask: Tensor | None) -> Tensor | None:
    """float32 `[B, N, 1]`: 1 at valid tokens, 0 at padded ones (None without padding)."""
    if padding_mask is None:
        return None
    if padding_mask.shape != x.shape[:2] or padding_mask.dtype != torch.bool:
        raise ValueError(
            f"padding_mask must be a bool tensor [B, N] = {tuple(x.shape[:2])}; got {padding_mask.dtype} "
            f"{tuple(padding_mask.shape)}"
        )
    return (~padding_mask)[..., None].float()


def _standardise(x: Tensor, weights: Tensor | None, dims: tuple[int, ...]) -> Tensor:
    """(x - mean) / sqrt(biased var + EPS) with the statistics over `dims` and the weighted (valid) tokens."""
    if weights is None:
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).square().mean(dim=dims, keepdim=True)
        return (x - mean) / torch.sqrt(var + EPS)
    count = weights.sum(dim=dims, keepdim=True).clamp_min(1.0)
    mean = (x * weights).sum(dim=dims, keepdim=True) / count
    var = ((x - mean).square() * weights).sum(dim=dims, keepdim=True) / count
    return (x - mean) / torch.sqrt(var + EPS) * weights


def instance_norm_over_time(x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
    """Per sample and channel: mean 0, biased variance 1 over the valid tokens (eps 1e-5, no affine).

    `x[B, N, D]` -> float32 `[B, N, D]`; equals `F.instance_norm` on `[B, D, N]` when nothing is padded
    (fairseq's `instance_norm_target_layer`). `padding_mask` bool `[B, N]` (True = padded): padded tokens
    take no part in the statistics and come out 0 (fairseq normalises padded batches as they are).
    """
    return _standardise(x.float(), _valid_weights(x, padding_mask), (1,))


def layer_norm_features(x: Tensor) -> Tensor:
    """`F.layer_norm` over the last (feature) dim, no affine, eps 1e-5: `[..., D]` -> float32 `[..., D]`."""
    return F.layer_norm(x.float(), x.shape[-1:], eps=EPS)


def batch_norm_features(x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
    """Batch norm in training mode without running statistics (fairseq `batch_norm_target_layer`).

    Per channel over every valid token of the batch: `x[B, N, D]` -> float32 `[B, N, D]`, biased variance,
    eps 1e-5; padded tokens (`padding_mask` True) take no part and come out 0.
    """
    return _standardise(x.float(), _valid_weights(x, padding_mask), (0, 1))


def _normalise(name: str, x: Tensor, padding_mask: Tensor | None) -> Tensor:
    if name == "instance":
        return instance_norm_over_time(x, padding_mask)
    if name == "batch":
        return batch_norm_features(x, padding_mask)
    return layer_norm_features(x)


@torch.no_grad()
def build_targets(
    layer_outputs: Sequence[Tensor],
    top_k: int,
    layer_norm: str | None = "instance",
    final_norm: Sequence[str] = (),
    padding_mask: Tensor | None = None,
) -> Tensor:
    """data2vec's regression targets (eq. 2): float32 `[B, N, D]`, without gradient.

    Takes the LAST `top_k` of `layer_outputs` (each `[B, N, D]`, first block first), normalises each with
    `layer_norm` ("instance" over time, "layer" over features, "batch" over the batch, or None), averages
    them, then applies each of `final_norm` ("layer", "instance") in the given order (fairseq applies
    `layer_norm_targets` before `instance_norm_targets`). Recipes: 1.0 audio instance, K=8; 1.0 text layer,
    K=10; 1.0 vision layer, K=6, final layer; 2.0 instance everywhere (K = 8 audio, 12 text, 10 images
    with final layer).
    """
    if not 1 <= top_k <= len(layer_outputs):
        raise ValueError(f"top_k must be in [1, {len(layer_outputs)}] (the layers given), got {top_k}")
    if layer_norm is not None and layer_norm not in LAYER_NORMS:
        raise ValueError(f"layer_norm must be one of {LAYER_NORMS} or None, got {layer_norm!r}")
    unknown = [name for name in final_norm if name not in FINAL_NORMS]
    if unknown:
        raise ValueError(f"final_norm entries must be among {FINAL_NORMS}, got {unknown}")
    layers = list(layer_outputs[-top_k:])
    if any(layer.shape != layers[0].shape for layer in layers):
        raise ValueError(
            f"layer outputs must share one shape, got {[tuple(layer.shape) for layer in layers]}"
        )
    target = torch.zeros(layers[0].shape, dtype=torch.float32, device=layers[0].device)
    for layer in layers:
        target += layer.float() if layer_norm is None else _normalise(layer_norm, layer, padding_mask)
    target /= top_k
    for name in final_norm:
        target = _normalise(name, target, padding_mask)
    return target


def regression_loss(
    prediction: Tensor, target: Tensor, beta: float = 0.0, scale: float | str = "sqrt_dim"
) -> Tensor:
    """Per-token data2vec loss `[..., D]` -> float32 `[...]` (fairseq `d2v_loss`, summed over features).

    Elementwise (prediction - target)^2 when `beta` is 0, else smooth L1 with `beta` (0.5 d^2 / beta for
    |d| < beta, |d| - 0.5 beta otherwise), summed over D and multiplied by `scale`: "sqrt_dim" 1 / sqrt(D)
    (fairseq's `loss_scale: null`, audio and images), "dim" 1 / D (the feature mean of data2vec 1.0
    vision's mean reduction), or a number (text: 1). Average the result over the masked tokens.
    """
    if prediction.shape != target.shape or prediction.dim() < 1:
        raise ValueError(
            f"prediction and target must share a shape [..., D], got {tuple(prediction.shape)} and "
            f"{tuple(target.shape)}"
        )
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    dim = prediction.shape[-1]
    if scale == "sqrt_dim":
        factor = 1.0 / math.sqrt(dim)
    elif scale == "dim":
        factor = 1.0 / dim
    elif isinstance(scale, (int, float)) and not isinstance(scale, bool):
        factor = float(scale)
    else:
        raise ValueError(f"scale must be 'sqrt_dim', 'dim' or a number, got {scale!r}")
    prediction, target = prediction.float(), target.float()
    if beta == 0:
        elementwise = (prediction - target).square()
    else:
        elementwise = F.smooth_l1_loss(prediction, target, reduction="none", beta=beta)
    return elementwise.sum(dim=-1) * factor


@torch.no_grad()
def feature_std(x: Tensor) -> Tensor:
    """fairseq's `compute_var`: the feature mean of sqrt(unbiased var + 1e-6) across tokens (float32 scalar).

    `x[..., D]` is read as `[M, D]` tokens. Under torch.distributed the token count, sums and sums of squares
    are all-reduced first, so every rank gets the value of the concatenated tokens of all ranks (as fairseq;
    sums in float64 here). The collapse guards compare it with `min_target_var` 0.1 and `min_pred_var` 0.01.
    """
    tokens = x.detach().reshape(-1, x.shape[-1]).double()
    stats = torch.cat([tokens.new_tensor([tokens.shape[0]]), tokens.sum(dim=0), tokens.square().sum(dim=0)])
    if is_distributed():
        dist.all_reduce(stats)
    count, sums, squares = stats[0], stats[1 : 1 + x.shape[-1]], stats[1 + x.shape[-1] :]
    if count < 2:
        raise ValueError(f"feature_std needs at least 2 tokens in all, got {int(count)}")
    var = (squares - sums.square() / count) / (count - 1)
    return torch.sqrt(var.clamp_min(0.0) + 1e-6).mean().float()
