"""SimCLR (Chen et al., 2020), optionally with Randomized Quantization views and Contrastive Quant.

Two views of every input are made on device by the view maker (default `ImageViews`: SimCLR's
random resized crop + flip, colour jitter in random order with p 0.8, grayscale with p 0.2, optional
Gaussian blur, and Randomized Quantization per RGB channel when `ImageViews(rq_bins=...)`, the
"SimCLR + RQ" setting of the RQ paper). Both views go through the
encoder and a projection MLP ((Linear-BN-ReLU) x `projector_hidden_layers`, then Linear) in one
pass; NT-Xent pulls the two projections of an input together, against the negatives of every
rank under DDP. `embed` is the pooled encoder feature of the un-augmented input (no projector).
See `ssl_lightning.methods.two_view` for view domains, Contrastive Quant and DDP.
"""

from __future__ import annotations

from torch import Tensor, nn

from ssl_lightning.methods.two_view import ContrastiveQuantConfig, TwoViewMethod, projection_mlp
from ssl_lightning.nn.losses.ntxent import NTXentLoss
from ssl_lightning.nn.optim import OptimizerConfig


class SimCLR(TwoViewMethod):
    """SimCLR over any view domain (images by default).

    Args:
        encoder: backbone, e.g. `ssl_lightning.backbones.image.TimmImageEncoder`
            (`forward(images, None) -> (features[B, N, D], None)`).
        views: view maker (default `ImageViews()`; `ImageViews(rq_bins=8)` for SimCLR + RQ).
        projection_dim: output size of the projection MLP.
        hidden_dim: hidden size of the projection MLP.
        projector_hidden_layers: Linear-BN-ReLU blocks before the output Linear (SimCLR 1, HARES 3).
        temperature: NT-Xent temperature.
        gather_distributed: NT-Xent negatives from every rank under DDP.
        quant: Contrastive Quant settings (None: plain SimCLR).
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: nn.Module | None = None,
        projection_dim: int = 128,
        hidden_dim: int = 2048,
        projector_hidden_layers: int = 1,
        temperature: float = 0.1,
        gather_distributed: bool = True,
        quant: ContrastiveQuantConfig | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, views, quant, optim, compile)
        self.save_hyperparameters()
        self.projector = projection_mlp(self.embed_dim, hidden_dim, projection_dim, projector_hidden_layers)
        self.quantize_heads(self.projector)
        self.criterion = NTXentLoss(temperature, gather_distributed)

    def forward(self, views: Tensor) -> Tensor:
        """Projections `[N, projection_dim]` of views `[N, ...]`."""
        return self.projector(self.encode_view(views))

    def pair_loss(self, a: Tensor, b: Tensor) -> Tensor:
        """NT-Xent of two views' projections `[B, projection_dim]`."""
        return self.criterion(a, b)
