"""`TimmImageEncoder`: a timm CNN as an image encoder following the backbone contract.

`forward(images[B, C, H, W], padding_mask=None) -> (features[B, N, D], None)`: the last feature map
with its H' x W' positions flattened into N tokens, so `SSLMethod.embed` (mean over tokens) is the
usual global average pool and `embed_sequence` gives the per-position features.
"""

from __future__ import annotations

from typing import Any

import timm
from einops import rearrange
from torch import Tensor, nn


class TimmImageEncoder(nn.Module):
    """A timm model without its classifier and pooling.

    Args:
        name: timm model name (e.g. "resnet18").
        cifar_stem: replace a ResNet stem (7x7 stride-2 conv + max-pool) by a 3x3 stride-1 conv and no
            pool, the usual change for 32x32 images (SimCLR's CIFAR-10 setup).
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
            if not all(hasattr(self.model, attr) for attr in ("conv1", "bn1", "maxpool")):
                raise ValueError(
                    f"cifar_stem=True needs a ResNet-style model (conv1, bn1, maxpool); {name!r} has none. "
                    "Pass cifar_stem=False."
                )
            stem_width = self.model.bn1.num_features
            self.model.conv1 = nn.Conv2d(in_chans, stem_width, kernel_size=3, stride=1, padding=1, bias=False)
            self.model.maxpool = nn.Identity()
        self.embed_dim: int = self.model.num_features

    def forward(self, images: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, None]:
        """`images[B, C, H, W]` -> `(features[B, H' * W', D], None)`; `padding_mask` must be None."""
        if images.dim() != 4:
            raise ValueError(f"TimmImageEncoder expects images [B, C, H, W], got shape {tuple(images.shape)}")
        if padding_mask is not None:
            raise ValueError("TimmImageEncoder takes no padding_mask (images are not padded); pass None")
        return rearrange(self.model(images), "b d h w -> b (h w) d"), None
