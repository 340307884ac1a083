"""`TimmImageEncoder`: a timm CNN as an image encoder following the backbone contract.

`forward(images[B, C, H, W], padding_mask=None) -> (features[B, N, D], None)`: the last feature map
with its H' x W' positions flattened into N tokens, so `SSLMethod.embed` (mean over tokens) is the
usual global average pool and `embed_sequence` gives the per-position features.

`cifar_stem` adapts an ImageNet network to 32x32 images:
- timm ResNets: the 7x7 stride-2 stem conv and its max-pool become one 3x3 stride-1 conv (SimCLR's
  CIFAR-10 setup), total stride 8;
- timm MobileNetV2 (`mobilenetv2_*`): the stem conv and the first stride-2 stage (24 channels) get
  stride 1, as the CIFAR MobileNetV2 of the Contrastive Quant group's code (GATECH-EIC/CPT,
  `cpt_cifar/models.py`, which pools a 4x4 map), total stride 8;
- models built for CIFAR (`cifar_native = True`, e.g. `cifar_resnet110`) are left as they are.
Any other model raises: pass `cifar_stem=False` for it.
"""

from __future__ import annotations

from typing import Any

import timm
from einops import rearrange
from timm.models.efficientnet import EfficientNet
from timm.models.resnet import ResNet
from torch import Tensor, nn


class TimmImageEncoder(nn.Module):
    """A timm model without its classifier and pooling.

    Args:
        name: timm model name (e.g. "resnet18").
        cifar_stem: adapt the network to 32x32 images (ResNets, MobileNetV2; see the module docstring).
        pretrained: load timm's pretrained weights (needs a download; off by default).
        in_chans: input channels.
        model_kwargs: further keyword arguments for `timm.create_model` (e.g. a smaller
            `channels` / `stem_width` for a tiny ResNet).
    """

    def __init__(
        self,
        name: str = "resnet18",
        cifar_stem: bool = True,
        pretrained: bool = False,
        in_chans: int = 3,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.model = timm.create_model(
            name,
            pretrained=pretrained,
            num_classes=0,
            global_pool="",
            in_chans=in_chans,
            **(model_kwargs or {}),
        )
        if cifar_stem:
            adapt_to_cifar(self.model, name, in_chans)
        self.embed_dim: int = self.model.num_features

    def forward(self, images: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """`images[B, C, H, W]` -> `(features[B, H' * W', D], None)`; `padding_mask` must be None."""
        if images.dim() != 4:
            raise ValueError(f"TimmImageEncoder expects images [B, C, H, W], got shape {tuple(images.shape)}")
        if padding_mask is not None:
            raise ValueError("TimmImageEncoder takes no padding_mask (images are not padded); pass None")
        return rearrange(self.model(images), "b d h w -> b (h w) d"), None


def adapt_to_cifar(model: nn.Module, name: str, in_chans: int) -> None:
    """Give the timm model `name` a total stride of 8 for 32x32 images, in place (see the module doc)."""
    if getattr(model, "cifar_native", False):
        return
    if isinstance(model, ResNet):
        stem_width = model.bn1.num_features
        model.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif isinstance(model, EfficientNet) and name.startswith("mobilenetv2"):
        model.conv_stem.stride = (1, 1)
        model.blocks[1][0].conv_dw.stride = (1, 1)
    else:
        raise ValueError(
            f"cifar_stem=True supports timm ResNets, mobilenetv2_* and CIFAR models (cifar_resnet*); "
            f"{name!r} ({type(model).__name__}) is none of them. Pass cifar_stem=False."
        )
