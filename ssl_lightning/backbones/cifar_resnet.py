"""The CIFAR ResNets of He et al. (2016, sec. 4.2), used by Contrastive Quant on CIFAR-100.

A 3x3 stem conv with 16 channels, then three stages of n basic blocks (two 3x3 convs each) with
16, 32 and 64 channels on 32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3 has stride
2), global average pooling: depth = 6n + 2 weighted layers. Contrastive Quant's ResNet-74/110/152
are n = 12/18/25: the bottleneck variant (9n + 2) cannot give 152, and its group's code
(GATECH-EIC/CPT, `cpt_cifar/models.py`) builds exactly these three with basic blocks.

Shortcuts on a change of shape: `"projection"` (1x1 conv + BatchNorm, as the CPT code; the
default) or `"zero_pad"` (He et al.'s parameter-free option A: subsample, then zero channels).
ResNet-110 has 1,727,312 parameters with option A (He et al.'s "1.7M") and 1,730,064 with
projections, without classifier.

Registered as timm models `cifar_resnet74`, `cifar_resnet110`, `cifar_resnet152` and `cifar_resnet`
(any `depth`), so `TimmImageEncoder("cifar_resnet110")` works (timm's `resnet152` is the ImageNet one).
All convolutions and the classifier are plain `nn.Conv2d` / `nn.Linear`, so `quantize_model` converts them.
"""

from __future__ import annotations

from typing import Any, Literal

import torch.nn.functional as F
from timm.models import register_model
from torch import Tensor, nn

from ssl_lightning.backbones.image import TimmImageEncoder

Shortcut = Literal["projection", "zero_pad"]
SHORTCUTS = ("projection", "zero_pad")
CONTRASTIVE_QUANT_DEPTHS = (74, 110, 152)
_TIMM_ONLY_KWARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")


def blocks_per_stage(depth: int) -> int:
    """n of a depth = 6n + 2 CIFAR ResNet (74 -> 12, 110 -> 18, 152 -> 25); raises for other depths."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(
            f"CIFAR ResNet depth must be 6n + 2 with n >= 1 (8, 14, 20, ..., 74, 110, 152); got {depth}"
        )
    return (depth - 2) // 6


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A: `x[B, C, H, W] -> [B, out_channels, H / s, W / s]`, new channels zero."""

    def __init__(self, out_channels: int, stride: int) -> None:
        super().__init__()
        self.out_channels, self.stride = out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - x.shape[1]))


class BasicBlock(nn.Module):
    """Two 3x3 conv + BatchNorm layers and a residual: `[B, C_in, H, W] -> [B, C_out, H / s, W / s]`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, shortcut: Shortcut) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        elif shortcut == "projection":
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = ZeroPadShortcut(out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.bn1(self.conv1(x)))
        return self.act(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNetModel(nn.Module):
    """A CIFAR ResNet as a timm-style classifier: `images[B, C, H, W] -> logits[B, num_classes]`.

    With `num_classes=0` the classifier is dropped and with `global_pool=""` the output is the last
    feature map `[B, 4 * width, H / 4, W / 4]` (what `TimmImageEncoder` asks timm for).

    Args:
        depth: 6n + 2 (74, 110, 152 in Contrastive Quant; 20-110 and 1202 in He et al.).
        num_classes: classifier outputs (0: none).
        in_chans: input channels.
        global_pool: "avg" (global average pooling) or "" (none).
        width: channels of the stem and stage 1 (16); stages 2 and 3 have 2x and 4x.
        shortcut: "projection" (1x1 conv + BN, the CPT code) or "zero_pad" (He et al.'s option A).
    """

    cifar_native = True  # built for 32x32 images: TimmImageEncoder's cifar_stem leaves it as is

    def __init__(
        self,
        depth: int = 110,
        num_classes: int = 100,
        in_chans: int = 3,
        global_pool: str = "avg",
        width: int = 16,
        shortcut: Shortcut = "projection",
    ) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        if shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut={shortcut!r} is not supported; choose one of {SHORTCUTS}")
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool={global_pool!r} is not supported; use 'avg' or '' (no pooling)")
        self.depth, self.num_classes, self.global_pool = depth, num_classes, global_pool
        self.conv1 = nn.Conv2d(in_chans, width, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.act = nn.ReLU(inplace=True)
        stages = []
        in_channels = width
        for stage, channels in enumerate((width, 2 * width, 4 * width)):
            blocks = [
                BasicBlock(
                    in_channels if i == 0 else channels, channels, 2 if stage and i == 0 else 1, shortcut
                )
                for i in range(n)
            ]
            stages.append(nn.Sequential(*blocks))
            in_channels = channels
        self.layer1, self.layer2, self.layer3 = stages
        self.num_features = 4 * width
        self.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, images: Tensor) -> Tensor:
        """`images[B, C, H, W]` -> last feature map `[B, 4 * width, H / 4, W / 4]`."""
        x = self.act(self.bn1(self.conv1(images)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward_head(self, features: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature map `[B, D, h, w]` -> pooled `[B, D]` (or the map when `global_pool=""`) -> logits."""
        if self.global_pool == "avg":
            features = features.mean(dim=(2, 3))
        return features if pre_logits else self.fc(features)

    def forward(self, images: Tensor) -> Tensor:
        """`images[B, C, H, W]` -> logits `[B, num_classes]` (or features, see the class docstring)."""
        return self.forward_head(self.forward_features(images))


def _create(depth: int, pretrained: bool, **kwargs: Any) -> CifarResNetModel:
    """Build for `timm.create_model`, dropping its pretrained-config arguments (there are no weights)."""
    if pretrained:
        raise ValueError(f"no pretrained weights exist for CIFAR ResNet-{depth}; pass pretrained=False")
    for key in _TIMM_ONLY_KWARGS:
        kwargs.pop(key, None)
    return CifarResNetModel(depth=depth, **kwargs)


@register_model
def cifar_resnet(pretrained: bool = False, depth: int = 110, **kwargs: Any) -> CifarResNetModel:
    """CIFAR ResNet of any depth 6n + 2 (timm name `cifar_resnet`)."""
    return _create(depth, pretrained, **kwargs)


@register_model
def cifar_resnet74(pretrained: bool = False, **kwargs: Any) -> CifarResNetModel:
    """Contrastive Quant's ResNet-74 (n = 12)."""
    return _create(74, pretrained, **kwargs)


@register_model
def cifar_resnet110(pretrained: bool = False, **kwargs: Any) -> CifarResNetModel:
    """He et al.'s and Contrastive Quant's ResNet-110 (n = 18)."""
    return _create(110, pretrained, **kwargs)


@register_model
def cifar_resnet152(pretrained: bool = False, **kwargs: Any) -> CifarResNetModel:
    """Contrastive Quant's ResNet-152 (n = 25; its text also says "ResNet-156", which is not 6n + 2)."""
    return _create(152, pretrained, **kwargs)


class CifarResNet(TimmImageEncoder):
    """CIFAR ResNet image encoder: `images[B, C, H, W] -> (features[B, H/4 * W/4, 4 * width], None)`.

    64 tokens of 64 channels for 32x32 images at the default width; `embed_dim = 4 * width`.

    Args:
        depth: 6n + 2; Contrastive Quant uses 74, 110 and 152.
        width: stem / stage-1 channels (16; smaller for smoke runs).
        shortcut: "projection" (CPT code, default) or "zero_pad" (He et al.'s option A).
        in_chans: input channels.
    """

    def __init__(
        self, depth: int = 110, width: int = 16, shortcut: Shortcut = "projection", in_chans: int = 3
    ) -> None:
        super().__init__(
            name="cifar_resnet",
            cifar_stem=False,
            in_chans=in_chans,
            model_kwargs={"depth": depth, "width": width, "shortcut": shortcut},
        )
