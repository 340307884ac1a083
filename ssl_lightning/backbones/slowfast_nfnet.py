"""Slowfast NFNet-F0 (Wang et al., "Towards learning universal audio representations", ICASSP 2022).

Two NFNet-F0 pathways over an 80-bin log-mel spectrogram (time x frequency), HARES Table 5:
- slow: the spectrogram max-pooled 4x in time, 8x the fast pathway's channels, group width 128;
- fast: full time resolution, group width 16;
- stems of four convs (slow 1x3/1x3/1x3/3x3 with 16/32/64/128 channels, fast 3x3 with 2/4/8/16),
  strides (2, 2) and (2, 2) at the first and last;
- four stages of 1/2/6/3 NFNet bottleneck blocks (1x1, k x 1, 1x3, 1x1: the 3x3 conv made
  separable), outputs 256/512/1536/1536 (slow) and 32/64/192/192 (fast), stride (1, 2) at the
  first block of stages 2-4;
- fast-to-slow fusion before every stage: a (7 x 1) conv with time stride 4, GELU, concatenated
  to the slow channels (64/256/512/1024 channels as in the official code, deepmind/slowfast_nfnets);
- global average pooling over frequency and time of both pathways, concatenated: 192 + 1536 = 1728.

NFNet details follow the official code: convolutions with Scaled Weight Standardization
(timm's `ScaledStdConv2d`), GELU (tanh approximation) scaled by gamma = 1.7015 inside the
pathways, residual `x + alpha * skip_gain * branch` with alpha = 0.2 and skip_gain initialised to 0,
the branch input scaled by beta = 1 / expected std, squeeze-excite (ratio 0.5, output x 2),
stochastic depth rate * block index / 12 without rescaling, average-pool + 1x1 conv shortcuts on
downsampling. Differences from the official code, following the paper: no final 1x1 conv
(`final_conv_mult=None`, 1728-d as Table 5; `final_conv_mult=2` gives the code's 3456-d), and the
fast stem's 2nd/3rd convs are 3x3 as Table 5 says (the code has 1x3).

`normalizer` ("none", "batch", "layer", "instance"): "none" is the normaliser-free network of the
paper; the others replace every weight-standardised conv by a plain conv followed by BatchNorm,
LayerNorm (GroupNorm with one group: over channels, time and frequency per example) or
InstanceNorm (per example and channel), for the paper's normaliser study (Table 3).

Parameters: 58,171,662 (62,970,894 with `final_conv_mult=2`, the "63m" of the paper's Table 2).

Tokens: the fast pathway's time steps (4 spectrogram frames = 40 ms each), averaged over
frequency, each with the slow features of its time step (repeated 4x) appended: `[B, N, 1728]`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from timm.layers import DropPath, ScaledStdConv2d, SEModule
from torch import Tensor, nn

from ssl_lightning.audio import KaldiFbank, frame_padding_mask

Pair = tuple[int, int]  # (time, frequency)
NORMALIZERS = ("none", "batch", "layer", "instance")
GELU_GAMMA = 1.7015043497085571  # NFNets' gain making GELU variance preserving
EXPANSION = 0.5
SE_RATIO = 0.5
ALPHA = 0.2
SECOND_KERNEL: Pair = (1, 3)
FRAME_LENGTH_MS, FRAME_SHIFT_MS = 25.0, 10.0
STD_FLOOR = 1e-5


@dataclass(frozen=True)
class PathwayConfig:
    """One pathway of Table 5; kernels and strides are (time, frequency)."""

    stem_channels: tuple[int, ...]
    stem_kernels: tuple[Pair, ...]
    stem_strides: tuple[Pair, ...]
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    kernels: tuple[Pair, ...]
    strides: tuple[Pair, ...]
    group_size: int


@dataclass(frozen=True)
class SlowfastConfig:
    """Both pathways, the fast-to-slow fusion conv output channels per stage, and the time ratio."""

    slow: PathwayConfig
    fast: PathwayConfig
    fusion_channels: tuple[int, ...]
    time_ratio: int = 4
    fusion_kernel: int = 7


_STAGE_STRIDES: tuple[Pair, ...] = ((1, 1), (1, 2), (1, 2), (1, 2))
_STEM_STRIDES: tuple[Pair, ...] = ((2, 2), (1, 1), (1, 1), (2, 2))
VARIANTS: dict[str, SlowfastConfig] = {
    "f0": SlowfastConfig(
        slow=PathwayConfig(
            stem_channels=(16, 32, 64, 128),
            stem_kernels=((1, 3), (1, 3), (1, 3), (3, 3)),
            stem_strides=_STEM_STRIDES,
            widths=(256, 512, 1536, 1536),
            depths=(1, 2, 6, 3),
            kernels=((1, 1), (1, 1), (3, 1), (3, 1)),
            strides=_STAGE_STRIDES,
            group_size=128,
        ),
        fast=PathwayConfig(
            stem_channels=(2, 4, 8, 16),
            stem_kernels=((3, 3), (3, 3), (3, 3), (3, 3)),
            stem_strides=_STEM_STRIDES,
            widths=(32, 64, 192, 192),
            depths=(1, 2, 6, 3),
            kernels=((3, 1), (3, 1), (3, 1), (3, 1)),
            strides=_STAGE_STRIDES,
            group_size=16,
        ),
        fusion_channels=(64, 256, 512, 1024),
    )
}


def scaled_config(
    config: SlowfastConfig, width_multiplier: float, depths: Sequence[int] | None
) -> SlowfastConfig:
    """`config` with every channel count and group size times `width_multiplier` (at least 1) and,
    when given, other per-stage block counts (for small models)."""
    num_stages = len(config.slow.depths)
    if depths is not None and (len(depths) != num_stages or min(depths) < 1):
        raise ValueError(f"depths must be {num_stages} block counts >= 1 (one per stage); got {list(depths)}")
    if width_multiplier <= 0:
        raise ValueError(f"width_multiplier must be > 0; got {width_multiplier}")

    def scale(channels: Sequence[int]) -> tuple[int, ...]:
        return tuple(max(1, round(c * width_multiplier)) for c in channels)

    def pathway(p: PathwayConfig) -> PathwayConfig:
        return replace(
            p,
            stem_channels=scale(p.stem_channels),
            widths=scale(p.widths),
            group_size=scale([p.group_size])[0],
            depths=tuple(depths) if depths is not None else p.depths,
        )

    return replace(
        config,
        slow=pathway(config.slow),
        fast=pathway(config.fast),
        fusion_channels=scale(config.fusion_channels),
    )


def standardize(spec: Tensor, frame_mask: Tensor | None = None) -> Tensor:
    """Standardise each example of `spec[B, frames, mels]` by its own mean and std, over its real frames
    when `frame_mask[B, frames]` (True = padding) is given; padded frames become 0."""
    keep = spec.new_ones(spec.shape[:2]) if frame_mask is None else (~frame_mask).to(spec.dtype)
    keep = rearrange(keep, "b t -> b t 1")
    count = keep.sum(dim=(1, 2), keepdim=True).clamp_min(1.0) * spec.shape[-1]
    mean = (spec * keep).sum(dim=(1, 2), keepdim=True) / count
    var = ((spec - mean) * keep).square().sum(dim=(1, 2), keepdim=True) / count
    return (spec - mean) / var.sqrt().clamp_min(STD_FLOOR) * keep


class ScaledGELU(nn.Module):
    """GELU (tanh approximation, as jax.nn.gelu) times NFNets' gamma: unit variance on N(0, 1) input."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate="tanh") * GELU_GAMMA


def _norm(normalizer: str, channels: int) -> nn.Module:
    """The normalisation layer after a conv of the normalised variants, for `[B, C, T, F]` maps."""
    if normalizer == "batch":
        return nn.BatchNorm2d(channels)
    if normalizer == "layer":
        return nn.GroupNorm(1, channels)
    return nn.InstanceNorm2d(channels, affine=True)


def conv_layer(
    in_channels: int,
    out_channels: int,
    kernel: Pair,
    stride: Pair = (1, 1),
    groups: int = 1,
    normalizer: str = "none",
) -> nn.Module:
    """A conv with "same" output size `ceil(size / stride)` (odd kernels): weight-standardised with a
    bias when `normalizer="none"`, else a plain conv followed by the normaliser."""
    padding = (kernel[0] // 2, kernel[1] // 2)
    if normalizer == "none":
        if in_channels // groups * kernel[0] * kernel[1] == 1:
            raise ValueError(
                f"a weight-standardised {kernel} conv from {in_channels} channel(s) has fan-in 1 and would "
                "standardise to zero; use a larger width_multiplier (>= 1/8) or a normalizer"
            )
        return ScaledStdConv2d(
            in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups
        )
    conv = nn.Conv2d(
        in_channels, out_channels, kernel, stride=stride, padding=padding, groups=groups, bias=False
    )
    return nn.Sequential(conv, _norm(normalizer, out_channels))


class NFBlock(nn.Module):
    """NFNet bottleneck block, separable grouped conv: `[B, C_in, T, F] -> [B, C_out, T / s_t, F / s_f]`.

    branch = conv2(act(conv1b(act(conv1(act(conv0(act(x) * beta))))))), squeeze-excite x 2;
    output = shortcut + alpha * skip_gain * stochastic_depth(branch).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Pair,
        stride: Pair,
        group_size: int,
        beta: float,
        drop_path_rate: float,
        normalizer: str,
    ) -> None:
        super().__init__()
        width = int(out_channels * EXPANSION)
        if width % group_size:
            raise ValueError(
                f"block width {width} (= {EXPANSION} x {out_channels} channels) is not a multiple of the "
                f"group size {group_size}; choose a width_multiplier that keeps them divisible (a power of 2)"
            )
        groups = width // group_size
        self.beta = beta
        self.act = ScaledGELU()
        self.conv0 = conv_layer(in_channels, width, (1, 1), normalizer=normalizer)
        self.conv1 = conv_layer(width, width, kernel, stride, groups, normalizer)
        self.conv1b = conv_layer(width, width, SECOND_KERNEL, groups=groups, normalizer=normalizer)
        self.conv2 = conv_layer(width, out_channels, (1, 1), normalizer=normalizer)
        self.shortcut: nn.Module | None = None
        if stride != (1, 1) or in_channels != out_channels:
            pool = [nn.AvgPool2d(stride, stride, ceil_mode=True)] if stride != (1, 1) else []
            self.shortcut = nn.Sequential(
                *pool, conv_layer(in_channels, out_channels, (1, 1), normalizer=normalizer)
            )
        self.se = SEModule(out_channels, rd_channels=max(1, int(out_channels * SE_RATIO)))
        self.drop_path = DropPath(drop_path_rate, scale_by_keep=False)
        self.skip_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:
        """`x[B, C_in, T, F]` -> `[B, C_out, ceil(T / s_t), ceil(F / s_f)]`."""
        out = self.act(x) * self.beta
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv0(out)
        out = self.conv1(self.act(out))
        out = self.conv1b(self.act(out))
        out = self.conv2(self.act(out))
        out = 2.0 * self.se(out)
        return shortcut + ALPHA * self.skip_gain * self.drop_path(out)


class NFNetPathway(nn.Module):
    """One pathway: `stem` (`[B, 1, T, F] -> [B, C, T/4, F/4]`), `blocks` (flat, stage after stage)
    and an optional `final_conv`. `fused_channels[s]` extra input channels reach stage s's first block.
    """

    def __init__(
        self,
        config: PathwayConfig,
        fused_channels: Sequence[int],
        stochastic_depth: float,
        normalizer: str,
        final_conv_mult: int | None,
    ) -> None:
        super().__init__()
        stem: list[nn.Module] = []
        in_channels = 1
        for index, (channels, kernel, stride) in enumerate(
            zip(config.stem_channels, config.stem_kernels, config.stem_strides, strict=True)
        ):
            stem += [ScaledGELU()] if index else []
            stem.append(conv_layer(in_channels, channels, kernel, stride, normalizer=normalizer))
            in_channels = channels
        self.stem = nn.Sequential(*stem)
        blocks = []
        num_blocks, expected_std = sum(config.depths), 1.0
        stages = zip(
            config.widths, config.depths, config.kernels, config.strides, fused_channels, strict=True
        )
        for width, depth, kernel, stride, fused in stages:
            for index in range(depth):
                block_in = in_channels + fused if index == 0 else in_channels
                rate = stochastic_depth * len(blocks) / num_blocks
                blocks.append(
                    NFBlock(
                        block_in,
                        width,
                        kernel,
                        stride if index == 0 else (1, 1),
                        config.group_size,
                        1.0 / expected_std,
                        rate,
                        normalizer,
                    )
                )
                in_channels = width
                # the official code resets the expected std after a stage's first (projection) block
                expected_std = ((1.0 if index == 0 else expected_std) ** 2 + ALPHA**2) ** 0.5
        self.blocks = nn.ModuleList(blocks)
        self.final_conv: nn.Module | None = None
        if final_conv_mult is not None:
            self.final_conv = conv_layer(
                in_channels, final_conv_mult * in_channels, (1, 1), normalizer=normalizer
            )
            in_channels *= final_conv_mult
        self.out_channels = in_channels

    def head(self, x: Tensor) -> Tensor:
        """The optional final 1x1 conv + GELU: `[B, C, T, F] -> [B, out_channels, T, F]`."""
        return x if self.final_conv is None else F.gelu(self.final_conv(x), approximate="tanh")


class FuseFastToSlow(nn.Module):
    """Fast-to-slow lateral connection: `(fast[B, C_f, T, F], slow[B, C_s, T / r, F])` ->
    `slow ++ GELU(conv_{7x1, stride r}(fast))`, `[B, C_s + C_fuse, T / r, F]`."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, time_ratio: int, normalizer: str
    ) -> None:
        super().__init__()
        self.conv = conv_layer(in_channels, out_channels, (kernel, 1), (time_ratio, 1), normalizer=normalizer)

    def forward(self, fast: Tensor, slow: Tensor) -> Tensor:
        return torch.cat([slow, F.gelu(self.conv(fast), approximate="tanh")], dim=1)


class SlowfastNFNet(nn.Module):
    """Slowfast NFNet audio encoder (see the module docstring for the architecture).

    `forward(waveform[B, T], padding_mask[B, T] | None) -> (features[B, N, embed_dim], mask[B, N] | None)`
    with N = ceil(frames / 4) and frames = 1 + (T - 400) // 160 (25 ms / 10 ms Kaldi log-mel at
    16 kHz); equal to `encode_spectrogram(spectrogram(waveform, padding_mask))` plus the mask. The
    default pooling (mean over tokens) is the paper's global average pool (exactly so when N is a
    multiple of 4; otherwise the last slow time step weighs less).

    Args:
        variant: "f0" (the only one in the paper).
        normalizer: "none" (normaliser-free, the paper's model), "batch", "layer" or "instance".
        stochastic_depth: block i of n (per pathway) drops with rate `stochastic_depth * i / n` (0.1).
        width_multiplier: scales every channel count and group size (1/8 for CPU smoke runs).
        depths: blocks per stage (default (1, 2, 6, 3)).
        final_conv_mult: None for Table 5's 1728-d output; 2 for the official code's final 1x1 conv (3456-d).
        n_mels: log-mel bins (80 in the paper).
        sample_rate: waveform sample rate.
    """

    def __init__(
        self,
        variant: str = "f0",
        normalizer: str = "none",
        stochastic_depth: float = 0.1,
        width_multiplier: float = 1.0,
        depths: Sequence[int] | None = None,
        final_conv_mult: int | None = None,
        n_mels: int = 80,
        sample_rate: int = 16000,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r} is not available; choose one of {sorted(VARIANTS)}")
        if normalizer not in NORMALIZERS:
            raise ValueError(f"normalizer={normalizer!r} is not supported; choose one of {NORMALIZERS}")
        if not 0.0 <= stochastic_depth < 1.0:
            raise ValueError(f"stochastic_depth must be in [0, 1); got {stochastic_depth}")
        config = scaled_config(VARIANTS[variant], width_multiplier, depths)
        self.config, self.sample_rate = config, sample_rate
        self.frontend = KaldiFbank(sample_rate=sample_rate, num_mel_bins=n_mels, normalize=False)
        num_stages = len(config.slow.depths)
        self.slow = NFNetPathway(
            config.slow, config.fusion_channels, stochastic_depth, normalizer, final_conv_mult
        )
        self.fast = NFNetPathway(config.fast, [0] * num_stages, stochastic_depth, normalizer, final_conv_mult)
        fast_channels = (config.fast.stem_channels[-1], *config.fast.widths[:-1])
        self.fuse = nn.ModuleList(
            FuseFastToSlow(c_in, c_out, config.fusion_kernel, config.time_ratio, normalizer)
            for c_in, c_out in zip(fast_channels, config.fusion_channels, strict=True)
        )
        self.stage_starts = [sum(config.slow.depths[:s]) for s in range(num_stages + 1)]
        self.time_stride = math.prod(time for time, _ in config.fast.stem_strides)
        self.embed_dim: int = self.fast.out_channels + self.slow.out_channels

    def spectrogram(self, waveform: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`waveform[B, T]` -> log-mel `[B, frames, n_mels]` standardised per example (the paper).

        With a `padding_mask[B, T]`, mean and std come from the real frames only and padded frames are 0.
        """
        spec = self.frontend(waveform)
        frame_mask = self.frame_mask(padding_mask, spec.shape[1])
        return standardize(spec, frame_mask)

    def encode_spectrogram(self, spec: Tensor) -> tuple[Tensor, None]:
        """`spec[B, frames, mels]` -> `(features[B, ceil(frames / 4), embed_dim], None)`."""
        if spec.dim() != 3:
            raise ValueError(f"spec must be [B, frames, mels]; got shape {tuple(spec.shape)}")
        x = rearrange(spec, "b t f -> b 1 t f")
        ratio = self.config.time_ratio
        slow = self.slow.stem(F.max_pool2d(x, (ratio, 1), (ratio, 1), ceil_mode=True))
        fast = self.fast.stem(x)
        for stage, fuse in enumerate(self.fuse):
            slow = fuse(fast, slow)
            for index in range(self.stage_starts[stage], self.stage_starts[stage + 1]):
                fast, slow = self.fast.blocks[index](fast), self.slow.blocks[index](slow)
        fast = reduce(self.fast.head(fast), "b c t f -> b t c", "mean")
        slow = reduce(self.slow.head(slow), "b c t f -> b t c", "mean")
        slow = repeat(slow, "b t c -> b (t r) c", r=ratio)[:, : fast.shape[1]]
        return torch.cat([fast, slow], dim=-1), None

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """`waveform[B, T]`, bool `padding_mask[B, T]` -> `(features[B, N, embed_dim], mask[B, N] | None)`."""
        spec = self.spectrogram(waveform, padding_mask)
        features, _ = self.encode_spectrogram(spec)
        return features, self.token_mask(padding_mask, spec.shape[1])

    def frame_mask(self, padding_mask: Tensor | None, num_frames: int) -> Tensor | None:
        """Spectrogram frame padding `[B, frames]` (a frame is padding when its first sample is), or None."""
        if padding_mask is None or not padding_mask.any():
            return None
        return frame_padding_mask(padding_mask, num_frames, self.sample_rate, FRAME_LENGTH_MS, FRAME_SHIFT_MS)

    def token_mask(self, padding_mask: Tensor | None, num_frames: int) -> Tensor | None:
        """Token j covers frames [4j, 4j + 4): it is padding when all of them are. `[B, ceil(frames / 4)]`."""
        frame_mask = self.frame_mask(padding_mask, num_frames)
        if frame_mask is None:
            return None
        tail = -num_frames % self.time_stride
        frame_mask = F.pad(frame_mask, (0, tail), value=True)
        return rearrange(frame_mask, "b (n k) -> b n k", k=self.time_stride).all(dim=-1)

    def group_matcher(self, coarse: bool = False) -> Callable[[str], int]:
        """Layer ids for layer-wise LR decay: stems 0; block i of both pathways i + 1 (the fusion before a
        stage joins its first block); final convs last. `coarse`: one id per stage instead of per block."""
        starts, num_blocks = self.stage_starts, self.stage_starts[-1]
        stage_of = [s for s in range(len(starts) - 1) for _ in range(starts[s], starts[s + 1])]

        def layer(name: str) -> int:
            parts = name.split(".")
            if parts[0] == "fuse":
                stage = int(parts[1])
                return 1 + (stage if coarse else starts[stage])
            if parts[1] == "blocks":
                index = int(parts[2])
                return 1 + (stage_of[index] if coarse else index)
            if parts[1] == "final_conv":
                return 1 + (len(starts) - 1 if coarse else num_blocks)
            return 0

        return layer
