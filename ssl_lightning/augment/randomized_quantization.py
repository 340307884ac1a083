"""Randomized Quantization (Wu et al., ICCV 2023, arXiv 2212.08663): a modality-agnostic augmentation.

Every channel of every sample is quantized with its own random non-uniform quantizer: K - 1 cut
points drawn uniformly in the channel's value range [lo, hi] split it into K bins, and each value
is replaced by its bin's representative. This follows the official
`microsoft/random_quantize: randomized_quantization.py` (`RandomizedQuantizationAugModule`; clean-room
notes in shared/research/methods_facts.md, section 1.2), vectorised with `searchsorted` instead of
a [slices, K, N] membership tensor:
    bins       [lo, c_1), [c_1, c_2), ..., [c_{K-1}, hi + 1e-6), with c_k sorted; a value equal to
               a cut goes to the bin that starts there, `hi` to the last bin
    'inside_random' (official default): a uniform random point of the bin, drawn per bin
    'middle':  the bin's midpoint

The "channel" is the feature axis at each sequence position (paper, sec. 1): RGB for images
`[B, C, H, W]` (`channel_dim=1`), the frequency bin for spectrograms (`[B, frames, mels]` log-mel of
`ssl_lightning.audio`: `channel_dim=-1`; `[B, 1, F, T]`: `channel_dim=2`; to quantize a whole
spectrogram as one channel, pass `[B, 1, F, T]` with `channel_dim=1`), the embedding dim for token
embeddings `[B, L, D]` (DABS: `channel_dim=-1`). lo/hi and the bins are per (sample, channel),
over all the other axes.
"""

from __future__ import annotations

from typing import Literal

import torch
from einops import rearrange
from torch import Tensor, nn

TOP_PAD = 1e-6
"""The official code's right edge of the last bin is hi + 1e-6."""


class RandomizedQuantization(nn.Module):
    """Quantize each (sample, channel) slice of `x[B, ...]` into `num_bins` random bins. Training mode only.

    Args:
        num_bins: K >= 1 bins per channel (official `region_num`; 8 for images in the README,
            5 for audio in the paper's BYOL-A experiment).
        p: probability of quantizing a sample (official `p_random_apply_rand_quant`); drawn once per
            sample, for all its channels; other samples are returned unchanged.
        collapse_to_val: representative of a bin: 'inside_random' (uniform point in the bin,
            official default) or 'middle' (midpoint).
        spacing: cut points 'random' (i.i.d. uniform fractions of [lo, hi]) or 'uniform' (k / K).
        channel_dim: the channel axis of the input (not 0, the batch axis); negative counts from
            the end.

    Quantized values carry no gradient (the quantizer is piecewise constant; the paper freezes the
    embedding layer in front of it). In eval mode the input is returned unchanged.
    """

    def __init__(
        self,
        num_bins: int = 8,
        p: float = 1.0,
        collapse_to_val: Literal["inside_random", "middle"] = "inside_random",
        spacing: Literal["random", "uniform"] = "random",
        channel_dim: int = 1,
    ) -> None:
        super().__init__()
        if not isinstance(num_bins, int) or num_bins < 1:
            raise ValueError(f"num_bins must be an int >= 1, got {num_bins!r}")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if collapse_to_val not in ("inside_random", "middle"):
            raise ValueError(f"collapse_to_val must be 'inside_random' or 'middle', got {collapse_to_val!r}")
        if spacing not in ("random", "uniform"):
            raise ValueError(f"spacing must be 'random' or 'uniform', got {spacing!r}")
        self.num_bins = num_bins
        self.p = p
        self.collapse_to_val = collapse_to_val
        self.spacing = spacing
        self.channel_dim = channel_dim

    def _channel_axis(self, x: Tensor) -> int:
        if not x.is_floating_point() or x.dim() < 2:
            raise ValueError(
                f"RandomizedQuantization needs a floating-point tensor [B, ...] with a channel axis; "
                f"got dtype {x.dtype}, shape {tuple(x.shape)}"
            )
        if not -x.dim() <= self.channel_dim < x.dim() or self.channel_dim % x.dim() == 0:
            raise ValueError(
                f"channel_dim={self.channel_dim} is not a non-batch axis of an input of shape "
                f"{tuple(x.shape)}; use 1..{x.dim() - 1} or a negative index"
            )
        return self.channel_dim % x.dim()

    def quantize(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Quantize every slice of `x[B, ...]` (no probability, any mode) -> same shape and dtype."""
        axis = self._channel_axis(x)
        moved = x.detach().movedim(axis, 1)
        compute_dtype = torch.promote_types(x.dtype, torch.float32)
        values = rearrange(moved, "b c ... -> b c (...)").to(compute_dtype)
        batch, channels, _ = values.shape
        device = generator.device if generator is not None else x.device
        lo = values.amin(dim=2, keepdim=True)
        hi = values.amax(dim=2, keepdim=True)
        if self.spacing == "random":
            fractions = torch.rand(
                batch, channels, self.num_bins - 1, generator=generator, device=device, dtype=compute_dtype
            ).to(x.device)
        else:
            fractions = torch.arange(1, self.num_bins, device=x.device, dtype=compute_dtype) / self.num_bins
        cuts = (lo + fractions * (hi - lo)).sort(dim=2).values
        left = torch.cat([lo, cuts], dim=2)
        right = torch.cat([cuts, hi + TOP_PAD], dim=2)
        if self.collapse_to_val == "middle":
            representatives = (left + right) / 2
        else:
            position = torch.rand(
                batch, channels, self.num_bins, generator=generator, device=device, dtype=compute_dtype
            ).to(x.device)
            representatives = left + position * (right - left)
        bins = torch.searchsorted(cuts.contiguous(), values.contiguous(), right=True)
        quantized = representatives.gather(2, bins).to(x.dtype).reshape(moved.shape)
        return quantized.movedim(1, axis)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """`x[B, ...]` -> same shape and dtype: each sample quantized with probability `p` (training mode)."""
        self._channel_axis(x)
        if not self.training or self.p == 0.0:
            return x
        quantized = self.quantize(x, generator)
        if self.p == 1.0:
            return quantized
        device = generator.device if generator is not None else x.device
        apply = torch.rand(x.shape[0], generator=generator, device=device).to(x.device) < self.p
        return torch.where(apply.view(-1, *[1] * (x.dim() - 1)), quantized, x)

    def extra_repr(self) -> str:
        return (
            f"num_bins={self.num_bins}, p={self.p}, collapse_to_val={self.collapse_to_val!r}, "
            f"spacing={self.spacing!r}, channel_dim={self.channel_dim}"
        )
