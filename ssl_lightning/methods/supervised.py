"""Supervised training and fine-tuning: an encoder and a linear head on pooled features, trained on labels.

With a random encoder it is the supervised baseline of every suite table; with `pretrained_checkpoint`
it is the fine-tuning stage of a self-supervised method. The head follows BEATs (section 3.3.3): the
whole (unmasked) sequence is encoded, and `p(C) = Softmax(MeanPool(W_c R))`, which equals a linear
layer on the pooled features. Fine-tuning regularisers of BEATs' Table 4, each off by default:
  - roll: a random circular time shift of each waveform (`augment.roll`);
  - mixup: inputs and targets mixed at lambda ~ Beta(alpha, alpha) (`augment.mixup`), with BCE;
  - SpecAugment on the encoder's spectrogram (encoders with `spectrogram` / `encode_spectrogram`);
  - layer-wise LR decay (`optim.layer_decay`), layer dropout (the encoder's own config), weighted
    sampling (the datamodule's `weighted_sampling`).
Loss: cross-entropy for single-label tasks, binary cross-entropy for multi-label tasks or with mixup.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
import torchmetrics
from torch import Tensor, nn

from ssl_lightning.augment.mixup import mixup, sample_mixup_ratio
from ssl_lightning.augment.roll import random_roll
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.methods.pretrained import load_pretrained_encoder
from ssl_lightning.nn.optim import OptimizerConfig

LABEL_TYPES = ("single", "multi")
LOSSES = ("ce", "bce")


class SupervisedClassifier(SSLMethod):
    """Encoder + linear head trained on labels (from scratch, or fine-tuned from pre-trained weights).

    Args:
        encoder: audio (or image) encoder following the backbone contract.
        num_classes: number of classes; None takes it from the datamodule at `setup`.
        label_type: "single" (int labels, softmax) or "multi" (multi-hot, sigmoid); None takes it
            from the datamodule.
        pretrained_checkpoint: encoder weights loaded when a fit starts (not when it resumes): an
            ssl_lightning method checkpoint or an official BEATs file (`load_pretrained_encoder`).
        spec_augment: SpecAugment of the encoder's input spectrogram in training (e.g.
            `ssl_lightning.augment.SpecAugment`); needs an encoder with `spectrogram` and
            `encode_spectrogram`. Padded frames are then treated as silence (no padding mask).
        mixup_alpha: mixup with lambda ~ Beta(alpha, alpha) per batch in training; 0 disables it.
        roll: roll each training waveform by a random circular time shift.
        loss: "ce" or "bce"; None: BCE for multi-label tasks or with mixup, else CE (BEATs, 3.3.3).
        optim: optimizer and schedule (`layer_decay` for layer-wise LR decay).
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_classes: int | None = None,
        label_type: str | None = None,
        pretrained_checkpoint: str | None = None,
        spec_augment: nn.Module | None = None,
        mixup_alpha: float = 0.0,
        roll: bool = False,
        loss: str | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        self.head: nn.Linear | None = None
        if label_type is not None and label_type not in LABEL_TYPES:
            raise ValueError(f"label_type must be one of {LABEL_TYPES}, got {label_type!r}")
        if loss is not None and loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES} or None (automatic), got {loss!r}")
        if mixup_alpha < 0:
            raise ValueError(f"mixup_alpha must be >= 0 (0 disables mixup), got {mixup_alpha}")
        if mixup_alpha > 0 and loss == "ce":
            raise ValueError("mixup makes soft targets; use loss='bce' or None with mixup_alpha > 0")
        if spec_augment is not None and not all(
            hasattr(encoder, name) for name in ("spectrogram", "encode_spectrogram")
        ):
            raise ValueError(
                f"spec_augment needs an encoder with `spectrogram` and `encode_spectrogram` methods; "
                f"{type(encoder).__name__} has none. Unset spec_augment."
            )
        self.spec_augment = spec_augment
        if num_classes is not None:
            self._build_head(num_classes, label_type or "single")

    def _build_head(self, num_classes: int, label_type: str) -> None:
        self.hparams.num_classes, self.hparams.label_type = num_classes, label_type
        self.head = nn.Linear(self.embed_dim, num_classes)
        for stage in ("val", "test"):
            if label_type == "single":
                metric = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
            else:
                metric = torchmetrics.AveragePrecision(task="multilabel", num_labels=num_classes)
            setattr(self, f"{stage}_metric", metric)

    @property
    def loss_name(self) -> str:
        """The loss in use: "ce" or "bce"."""
        if self.hparams.loss is not None:
            return self.hparams.loss
        return "bce" if self.hparams.label_type == "multi" or self.hparams.mixup_alpha > 0 else "ce"

    def setup(self, stage: str) -> None:
        if self.head is None:
            datamodule = getattr(self.trainer, "datamodule", None)
            if datamodule is None or getattr(datamodule, "num_classes", None) is None:
                raise ValueError(
                    "SupervisedClassifier needs model.num_classes, or a labelled datamodule that provides "
                    "`num_classes` (e.g. HaresMiniDataModule with a task other than 'pool')"
                )
            self._build_head(datamodule.num_classes, self.hparams.label_type or datamodule.label_type)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed = True

    def on_fit_start(self) -> None:
        """Load `pretrained_checkpoint` into the encoder, unless the fit resumes from a checkpoint of its own
        (restored before this hook; strategies that restore later overwrite these weights anyway)."""
        super().on_fit_start()
        if self.hparams.pretrained_checkpoint and not getattr(self, "_resumed", False):
            load_pretrained_encoder(self.encoder, self.hparams.pretrained_checkpoint)

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """Class logits `[B, C]` of the un-augmented batch."""
        return self.head(self.embed(batch))

    def targets(self, label: Tensor) -> Tensor:
        """What the loss compares logits with: class indices for CE, float one-/multi-hot `[B, C]` for BCE."""
        if self.loss_name == "ce":
            return label
        if self.hparams.label_type == "multi":
            return label.float()
        return F.one_hot(label, self.hparams.num_classes).float()

    def loss(self, logits: Tensor, target: Tensor) -> Tensor:
        """`loss_name`'s loss of `logits[B, C]`: BCE against float targets `[B, C]`, or CE against class ids
        `[B]`."""
        if self.loss_name == "bce":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.cross_entropy(logits, target)

    def predict_scores(self, batch: dict[str, Tensor]) -> Tensor:
        """Class probabilities `[B, C]`: softmax (single-label) or sigmoid (multi-label)."""
        logits = self(batch)
        return logits.sigmoid() if self.hparams.label_type == "multi" else logits.softmax(dim=-1)

    def augmented_logits(self, batch: dict[str, Tensor], target: Tensor) -> tuple[Tensor, Tensor]:
        """Logits `[B, C]` and targets of the batch after roll, mixup and SpecAugment (those configured)."""
        modality = "audio" if "audio" in batch else "image"
        inputs, padding_mask = batch[modality], batch.get("padding_mask")
        if self.hparams.roll:
            if modality != "audio":
                raise ValueError("roll augmentation shifts waveforms; set roll=False for image batches")
            inputs, padding_mask = random_roll(inputs, padding_mask)
        if self.hparams.mixup_alpha > 0:
            ratio = sample_mixup_ratio(self.hparams.mixup_alpha)
            inputs, target, padding_mask = mixup(inputs, target, ratio, padding_mask)
        if self.spec_augment is not None:
            features, padding_mask = self.encoder.encode_spectrogram(
                self.spec_augment(self.encoder.spectrogram(inputs))
            )
        else:
            features, padding_mask = self.encode({modality: inputs, "padding_mask": padding_mask})
        return self.head(self.pool(features, padding_mask)), target

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        logits, target = self.augmented_logits(batch, self.targets(batch["label"]))
        loss = self.loss(logits, target)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["label"].shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Tensor], stage: str) -> None:
        logits, label = self(batch), batch["label"]
        batch_size = label.shape[0]
        loss = self.loss(logits, self.targets(label))
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=batch_size, sync_dist=True)
        metric = getattr(self, f"{stage}_metric")
        metric(logits, label.long() if self.hparams.label_type == "multi" else label)
        self.log(f"{stage}/metric", metric, prog_bar=True, batch_size=batch_size)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")
