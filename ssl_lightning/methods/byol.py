"""BYOL (Grill et al., 2020), optionally with Contrastive Quant.

The online network (encoder, projector, predictor) predicts the target network's projection of
the other view: loss = byol(p_1, z_2) + byol(p_2, z_1), byol(p, z) = 2 - 2 cos(p, z), with a
stop-gradient on the target. The target (encoder + projector) is an fp32 EMA copy of the online
ones (`EMATeacher`, saved in checkpoints), updated after every optimizer step
(`optimizer_step`) with tau rising from `base_tau` to `final_tau` on a cosine over the run
(`cosine_tau`, K = `trainer.estimated_stepping_batches`). Both views go through both networks in
one pass each. Heads: Linear-BN-ReLU-Linear (projector 4096 -> 256, predictor 256 -> 4096 -> 256).

The target follows the module's train/eval mode (its BatchNorm normalises with batch statistics
in training, as BYOL's). Under DDP the target stays identical on every rank (DDP keeps the online
weights identical and the update is deterministic); train with `sync_batchnorm=True` so that the
heads' BatchNorm sees the global batch, as one process would (GPUs only: PyTorch's SyncBatchNorm
does not run on CPU). See `ssl_lightning.methods.two_view` for view domains and
Contrastive Quant (the per-pair loss is BYOL's symmetric loss; the target runs at full precision
unless `quant.quantize_target`).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from ssl_lightning.methods.two_view import ContrastiveQuantConfig, TwoViewMethod, projection_mlp
from ssl_lightning.nn.ema import EMATeacher, cosine_tau
from ssl_lightning.nn.losses.contrastive_quant import byol_pair_loss
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.quantized_model import precision


class BYOL(TwoViewMethod):
    """BYOL over any view domain (images by default).

    Args:
        encoder: backbone following the encoder contract.
        views: view maker (default `ImageViews()`).
        projection_dim: output size of the projector and the predictor.
        hidden_dim: hidden size of the projector.
        projector_hidden_layers: Linear-BN-ReLU blocks of the projector before its output Linear.
        predictor_hidden_dim: hidden size of the predictor (one Linear-BN-ReLU block).
        base_tau, final_tau: EMA decay at the first and the last optimizer step.
        quant: Contrastive Quant settings (None: plain BYOL).
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: nn.Module | None = None,
        projection_dim: int = 256,
        hidden_dim: int = 4096,
        projector_hidden_layers: int = 1,
        predictor_hidden_dim: int = 4096,
        base_tau: float = 0.996,
        final_tau: float = 1.0,
        quant: ContrastiveQuantConfig | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, views, quant, optim, compile)
        self.save_hyperparameters()
        if not 0.0 <= base_tau <= final_tau <= 1.0:
            raise ValueError(
                f"need 0 <= base_tau <= final_tau <= 1, got base_tau={base_tau}, final_tau={final_tau}"
            )
        self.base_tau, self.final_tau = base_tau, final_tau
        self.projector = projection_mlp(self.embed_dim, hidden_dim, projection_dim, projector_hidden_layers)
        self.predictor = projection_mlp(projection_dim, predictor_hidden_dim, projection_dim)
        self.quantize_heads(self.projector, self.predictor)
        self.target = EMATeacher(self.online_network(), always_eval=False)
        self._total_steps = 0

    def online_network(self) -> nn.ModuleDict:
        """The online modules the target averages: `{"encoder", "projector"}` (compile wrapper removed)."""
        encoder = getattr(self.encoder, "_orig_mod", self.encoder)
        return nn.ModuleDict({"encoder": encoder, "projector": self.projector})

    def target_projection(self, views: Tensor) -> Tensor:
        """Target projections `[N, projection_dim]` (float32, no gradient) of views `[N, ...]`."""
        target = self.target.module
        context: AbstractContextManager[Any] = nullcontext()
        if self.quant is not None and not self.quant.quantize_target:
            context = precision(target, None)
        with torch.no_grad(), context:
            return target["projector"](self.encode_view(views.float(), target["encoder"])).float()

    def forward(self, views: Tensor) -> Tensor:
        """Online prediction and target projection of views `[N, ...]`, stacked: `[N, 2, projection_dim]`."""
        prediction = self.predictor(self.projector(self.encode_view(views)))
        return torch.stack([prediction.float(), self.target_projection(views)], dim=1)

    def pair_loss(self, a: Tensor, b: Tensor) -> Tensor:
        """Symmetric BYOL loss of two branches `[B, 2, projection_dim]` (prediction, target), in [0, 8]."""
        return byol_pair_loss(a.unbind(1), b.unbind(1))

    def tau(self, step: int, total_steps: int) -> float:
        """EMA decay after optimizer step `step` (0-based) of `total_steps`."""
        return cosine_tau(step, total_steps, self.base_tau, self.final_tau)

    def update_target(self, step: int, total_steps: int) -> float:
        """target <- tau * target + (1 - tau) * online after optimizer step `step`; returns tau."""
        tau = self.tau(step, total_steps)
        self.target.update(self.online_network(), tau)
        return tau

    def on_train_start(self) -> None:
        total = self.trainer.estimated_stepping_batches
        if not 0 < total < float("inf"):
            raise ValueError(
                f"BYOL's tau schedule needs a finite number of optimizer steps; the trainer estimates "
                f"{total}. Set trainer.max_steps or trainer.max_epochs."
            )
        self._total_steps = int(total)

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """The optimizer step, then the target update (once per optimizer step, not per accumulated
        micro-batch). Done here rather than in `on_train_batch_end`, which Lightning calls after the
        callbacks' `on_train_batch_end`: a step-based `ModelCheckpoint` would save a target one
        update behind its online weights, and a resumed run would differ."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        # Lightning counts the step in global_step only after this hook returns: it is this step's index
        tau = self.update_target(self.trainer.global_step, self._total_steps)
        self.log("train/tau", tau)
