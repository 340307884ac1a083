"""SimCLR (Chen et al., 2020) for images, optionally with Randomized Quantization (Wu et al., 2023).

Two views of every image are made on device, batched: random resized crop + horizontal flip (one
`F.grid_sample` with a per-sample affine map), brightness/contrast jitter, then, when `rq_bins` is
set, Randomized Quantization per (sample, RGB channel), the "SimCLR + RQ" setting of the RQ paper.
Both views go through the encoder and a projection MLP (Linear-BN-ReLU-Linear); NT-Xent pulls the
two projections of an image together. `embed` is the pooled encoder feature of the un-augmented
image (no projector).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.augment.randomized_quantization import RandomizedQuantization
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.nn.losses.ntxent import NTXentLoss
from ssl_lightning.nn.optim import OptimizerConfig

ASPECT_RATIO = (3 / 4, 4 / 3)
"""Random resized crop aspect-ratio range (torchvision's default)."""
JITTER = 0.4
"""Brightness and contrast factors are drawn from [1 - JITTER, 1 + JITTER] (SimCLR's strength 0.5 x 0.8)."""


def _uniform(
    low: float, high: float, batch: int, images: Tensor, generator: torch.Generator | None
) -> Tensor:
    """`batch` uniform draws in [low, high) on the images' device (drawn on the generator's device)."""
    device = generator.device if generator is not None else images.device
    draws = torch.rand(batch, generator=generator, device=device, dtype=torch.float32)
    return (low + (high - low) * draws).to(images.device)


def random_resized_crop_flip(
    images: Tensor, scale: tuple[float, float], generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample random resized crop (area fraction in `scale`, aspect ratio 3/4-4/3) and horizontal
    flip with probability 1/2, resampled bilinearly to the input size: `[B, C, H, W]` -> same shape."""
    batch = images.shape[0]
    area = _uniform(scale[0], scale[1], batch, images, generator)
    log_ratio = _uniform(math.log(ASPECT_RATIO[0]), math.log(ASPECT_RATIO[1]), batch, images, generator)
    width = (area * log_ratio.exp()).sqrt().clamp(max=1.0)
    height = (area / log_ratio.exp()).sqrt().clamp(max=1.0)
    center_x = (1 - width) * _uniform(-1.0, 1.0, batch, images, generator)
    center_y = (1 - height) * _uniform(-1.0, 1.0, batch, images, generator)
    flip = torch.where(_uniform(0.0, 1.0, batch, images, generator) < 0.5, -1.0, 1.0)
    zero = torch.zeros_like(width)
    theta = torch.stack(
        [torch.stack([width * flip, zero, center_x], 1), torch.stack([zero, height, center_y], 1)], 1
    )
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(
    images: Tensor, strength: float = JITTER, generator: torch.Generator | None = None
) -> Tensor:
    """Per-sample brightness then contrast factors in [1 - strength, 1 + strength], clamped to [0, 1]:
    `[B, C, H, W]` -> same shape. Contrast blends with the sample's mean intensity."""
    batch = images.shape[0]
    brightness = _uniform(1 - strength, 1 + strength, batch, images, generator).view(-1, 1, 1, 1)
    contrast = _uniform(1 - strength, 1 + strength, batch, images, generator).view(-1, 1, 1, 1)
    bright = (images * brightness).clamp(0.0, 1.0)
    mean = bright.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + contrast * (bright - mean)).clamp(0.0, 1.0)


def images_of(batch: dict[str, Tensor]) -> Tensor:
    """The batch's images `[B, C, H, W]`, checked."""
    images = batch.get("image")
    if images is None or images.dim() != 4:
        found = "no 'image' key" if images is None else f"'image' of shape {tuple(images.shape)}"
        raise ValueError(
            f"SimCLR needs batches with 'image' float [B, C, H, W] (e.g. DigitsDataModule); got {found}"
        )
    return images


class SimCLR(SSLMethod):
    """SimCLR over image batches (`batch["image"]` `[B, C, H, W]` in [0, 1]).

    Args:
        encoder: image encoder, `forward(images, None) -> (features[B, N, D], None)`
            (e.g. `ssl_lightning.backbones.image.TimmImageEncoder`).
        projection_dim: output size of the projection MLP.
        hidden_dim: hidden size of the projection MLP.
        temperature: NT-Xent temperature.
        gather_distributed: NT-Xent negatives from every rank under DDP.
        rq_bins: Randomized Quantization bins per channel (None: no RQ); the RQ paper uses 5-15.
        rq_p: probability of applying RQ to a view.
        crop_scale: area fraction range of the random resized crop.
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        projection_dim: int = 128,
        hidden_dim: int = 2048,
        temperature: float = 0.1,
        gather_distributed: bool = True,
        rq_bins: int | None = None,
        rq_p: float = 1.0,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        if not (len(crop_scale) == 2 and 0 < crop_scale[0] <= crop_scale[1] <= 1):
            raise ValueError(f"crop_scale must be (low, high) with 0 < low <= high <= 1, got {crop_scale!r}")
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.projector = nn.Sequential(
            nn.Linear(self.embed_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, projection_dim),
        )
        self.rq = None if rq_bins is None else RandomizedQuantization(num_bins=rq_bins, p=rq_p, channel_dim=1)
        self.criterion = NTXentLoss(temperature, gather_distributed)

    def encode(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor | None]:
        """Encoder output for the batch's images: `(features[B, N, D], None)`."""
        return self.encoder(images_of(batch), None)

    def augment(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One random view of every image: crop + flip, colour jitter, then RQ when configured and
        in training mode. `[B, C, H, W]` -> same shape."""
        view = color_jitter(random_resized_crop_flip(images, self.crop_scale, generator), generator=generator)
        return view if self.rq is None else self.rq(view, generator)

    def project(self, views: Tensor) -> Tensor:
        """Projections `[B, projection_dim]` of images `[B, C, H, W]`."""
        return self.projector(self.pool(*self.encode({"image": views})))

    def contrastive_loss(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """NT-Xent of two views of `images[B, C, H, W]`, both views in one encoder pass."""
        views = torch.cat([self.augment(images, generator), self.augment(images, generator)])
        z0, z1 = self.project(views).chunk(2)
        return self.criterion(z0, z1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        images = images_of(batch)
        loss = self.contrastive_loss(images)
        self.log("train/loss", loss, prog_bar=True, batch_size=images.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """NT-Xent on views drawn with a generator seeded by `batch_idx` (same views every epoch;
        RQ is off in eval mode, so this is the loss without RQ)."""
        images = images_of(batch)
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self.contrastive_loss(images, generator)
        self.log("val/loss", loss, prog_bar=True, batch_size=images.shape[0], sync_dist=True)
