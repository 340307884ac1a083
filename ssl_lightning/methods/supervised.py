"""Supervised baseline: the encoder trained end to end on a task's labels.

Every suite table compares a method against this model and against a frozen random-init
encoder. Pooled encoder features feed one linear layer; cross-entropy for single-label tasks,
binary cross-entropy for multi-label ones.
"""

from __future__ import annotations

import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.nn.optim import OptimizerConfig

LABEL_TYPES = ("single", "multi")


class SupervisedClassifier(SSLMethod):
    """Encoder + linear head trained on labels.

    Args:
        encoder: audio encoder (backbone contract).
        num_classes: number of classes; None takes it from the datamodule at `setup`.
        label_type: "single" (int labels, softmax) or "multi" (multi-hot, sigmoid); None takes it
            from the datamodule.
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int | None = None,
        label_type: str | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        self.head: nn.Linear | None = None
        if label_type is not None and label_type not in LABEL_TYPES:
            raise ValueError(f"label_type must be one of {LABEL_TYPES}, got {label_type!r}")
        if num_classes is not None:
            self._build_head(num_classes, label_type or "single")

    def _build_head(self, num_classes: int, label_type: str) -> None:
        self.hparams.num_classes, self.hparams.label_type = num_classes, label_type
        self.head = nn.Linear(self.embed_dim, num_classes)
        if label_type == "single":
            self.val_metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        else:
            self.val_metric = torchmetrics.AveragePrecision(task="multilabel", num_labels=num_classes)

    def setup(self, stage: str) -> None:
        if self.head is not None:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is None or getattr(datamodule, "num_classes", None) is None:
            raise ValueError(
                "SupervisedClassifier needs model.num_classes, or a labelled datamodule that provides "
                "`num_classes` (e.g. HaresMiniDataModule with a task other than 'pool')"
            )
        self._build_head(datamodule.num_classes, self.hparams.label_type or datamodule.label_type)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Class logits `[B, C]`."""
        return self.head(self.embed(batch))

    def loss(self, logits: Tensor, label: Tensor) -> Tensor:
        if self.hparams.label_type == "multi":
            return F.binary_cross_entropy_with_logits(logits, label.float())
        return F.cross_entropy(logits, label)

    def predict_scores(self, batch: dict[str, Tensor]) -> Tensor:
        """Class probabilities `[B, C]`: softmax (single-label) or sigmoid (multi-label)."""
        logits = self(batch)
        return logits.sigmoid() if self.hparams.label_type == "multi" else logits.softmax(dim=-1)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss = self.loss(self(batch), batch["label"])
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["label"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        logits = self(batch)
        label = batch["label"]
        batch_size = label.shape[0]
        self.log("val/loss", self.loss(logits, label), prog_bar=True, batch_size=batch_size, sync_dist=True)
        self.val_metric(logits, label.long() if self.hparams.label_type == "multi" else label)
        self.log("val/metric", self.val_metric, prog_bar=True, batch_size=batch_size)
