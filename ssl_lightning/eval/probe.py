"""Linear (or 1-hidden-layer MLP) probe on frozen, cached features: the HARES downstream protocol.

HARES: frozen encoder, global average pooling (done by `embed`), one linear layer (a 512-unit MLP
for AudioSet), Adam with linear warmup from 0 to 2e-4 over 5k steps then cosine decay to 0, batch 64,
400k steps. Those step counts fit millions of samples; our defaults (lr 1e-3, 100 warmup steps,
1000 steps) fit the few thousand sub-clips of hares-mini, where the head converges in seconds.
Training samples are the sub-clips, each carrying its clip's label; test scores are averaged per
clip (`aggregate_subclips`) before the metric.

DABS (Tamkin et al. 2021, `src/systems/transfer.py`) probes differently: `DABS_PROBE`.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.eval.features import FeatureSet
from ssl_lightning.eval.metrics import METRICS, aggregate_subclips, compute_metric, slot_ranges
from ssl_lightning.nn.schedules import warmup_cosine

LabelType = Literal["single", "multi", "slots", "regression"]
"""Labels: class ids ("single"), multi-hot ("multi"), consecutive one-hot slots ("slots": one softmax
and cross-entropy per slot, e.g. Fluent Speech Commands' action, object and location), or [N] float
targets of one output trained with MSE ("regression", e.g. DABS's STS-B)."""
METRIC_LABEL_TYPE: dict[str, LabelType] = {
    "accuracy": "single",
    "mAP": "multi",
    "all_slots": "slots",
    "auroc": "multi",
    "spearman": "regression",
    "pearson": "regression",
}
"""The label type each metric scores. A one-class "multi" task (one sigmoid output trained with BCE: DABS's
binary tasks) may also be scored by the metrics of `BINARY_METRICS`."""
BINARY_METRICS = ("accuracy", "pearson", "spearman")
RAW_OUTPUT_METRICS = ("pearson", "spearman")
"""Metrics scored on the head's raw output (DABS: CoLA's Pearson on its BCE logit), not on probabilities."""


@dataclass
class ProbeConfig:
    """Hyper-parameters of the probe head and its training.

    Args:
        hidden_dim: None for a linear layer; an int for a 1-hidden-layer ReLU MLP (HARES: 512, AudioSet).
        lr: peak learning rate.
        weight_decay: Adam's L2 penalty, or AdamW's decoupled weight decay.
        batch_size: sub-clips per step, drawn epoch by epoch without replacement.
        max_steps: optimisation steps (unless `epochs` is set).
        warmup_steps: linear warmup steps before the cosine decay (`warmup_cosine`); 0 with "constant".
        standardize: z-score features with the train split's per-dimension mean and std.
        seed: seeds the head's initialisation and the batch order (global RNG state is left untouched).
        select_on_valid: evaluate on the valid split every `eval_every` steps (and at the end) and
            keep the head with the best task metric; without a valid split the last head is kept.
        eval_every: steps between valid evaluations.
        num_threads: torch intra-op CPU threads while fitting (restored afterwards). The head's
            matrices are small, so 1 thread is as fast as several and avoids the large slowdowns of
            oversubscribed cores on a busy machine; None keeps torch's current setting.
        optimizer: "adam" (L2 penalty) or "adamw" (decoupled weight decay; DABS).
        schedule: "warmup_cosine" or "constant" (the learning rate throughout; DABS).
        epochs: when set, train epochs x max(1, N // batch_size) steps on N training sub-clips instead of
            `max_steps` (resolved at fit; DABS's loader drops the last partial batch of an epoch).
    """

    hidden_dim: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 64
    max_steps: int = 1000
    warmup_steps: int = 100
    standardize: bool = True
    seed: int = 0
    select_on_valid: bool = True
    eval_every: int = 100
    num_threads: int | None = 1
    optimizer: Literal["adam", "adamw"] = "adam"
    schedule: Literal["warmup_cosine", "constant"] = "warmup_cosine"
    epochs: int | None = None

    def __post_init__(self) -> None:
        for name in ("hidden_dim", "lr", "batch_size", "max_steps", "eval_every", "num_threads", "epochs"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"ProbeConfig.{name} must be positive, got {value}")
        if self.weight_decay < 0:
            raise ValueError(f"ProbeConfig.weight_decay must be >= 0, got {self.weight_decay}")
        for name, choices in (("optimizer", ("adam", "adamw")), ("schedule", ("warmup_cosine", "constant"))):
            if getattr(self, name) not in choices:
                raise ValueError(
                    f"ProbeConfig.{name} must be one of {list(choices)}, got {getattr(self, name)!r}"
                )
        if self.schedule == "constant" and self.warmup_steps:
            raise ValueError(
                f"ProbeConfig.warmup_steps={self.warmup_steps} goes with schedule 'warmup_cosine'; "
                "set warmup_steps=0 for schedule 'constant'"
            )
        if self.warmup_steps < 0 or self.epochs is None and self.warmup_steps > self.max_steps:
            raise ValueError(
                f"ProbeConfig.warmup_steps={self.warmup_steps} must lie in [0, max_steps={self.max_steps}]"
            )

    def steps(self, num_samples: int | None) -> int:
        """Optimisation steps on `num_samples` training sub-clips: `max_steps`, or `epochs` epochs."""
        if self.epochs is None:
            return self.max_steps
        if num_samples is None:
            raise ValueError(
                "ProbeConfig.epochs needs the number of training samples, which a stream of training batches "
                "does not tell; pass num_samples, or set max_steps and epochs=None"
            )
        steps = self.epochs * max(1, num_samples // self.batch_size)
        if self.warmup_steps > steps:
            raise ValueError(
                f"ProbeConfig.warmup_steps={self.warmup_steps} exceeds the {steps} training steps"
            )
        return steps


DABS_PROBE = ProbeConfig(
    lr=1e-4,
    weight_decay=1e-4,
    warmup_steps=0,
    standardize=False,
    select_on_valid=False,
    optimizer="adamw",
    schedule="constant",
    epochs=100,
)
"""DABS's linear evaluation (`src/systems/transfer.py`, `conf/transfer.yaml`): one linear layer on the frozen
mean-pooled tokens, AdamW (lr 1e-4, weight decay 1e-4) at a constant learning rate for 100 epochs over the
train split, no feature standardisation and no model selection. The batch size is the data set's (64 images
and speech, 128 text, 256 sensors): the DABS suite sets it per task. DABS trains in fp16; this runs fp32."""


def _batch_indices(num_samples: int, batch_size: int, generator: torch.Generator) -> Iterator[Tensor]:
    """Endless stream of [batch_size] index batches, reshuffled each epoch (batches may span epochs)."""
    buffer = torch.empty(0, dtype=torch.long)
    while True:
        while len(buffer) < batch_size:
            buffer = torch.cat([buffer, torch.randperm(num_samples, generator=generator)])
        yield buffer[:batch_size]
        buffer = buffer[batch_size:]


class LinearProbe:
    """A linear or MLP head trained on a `FeatureSet` of frozen embeddings.

    After `fit`: `head`, the standardisation statistics `mean`/`std` [D], `steps` (optimisation steps
    taken), and when validating, `valid_history` (list of (step, valid metric)), `best_step` and
    `best_valid`.
    """

    def __init__(self, config: ProbeConfig | None = None) -> None:
        self.config = config or ProbeConfig()
        self.head: nn.Module | None = None
        self.label_type: LabelType | None = None
        self.num_classes: int | None = None
        self.slot_sizes: tuple[int, ...] | None = None
        self._slots: list[tuple[int, int]] | None = None
        self.mean: Tensor | None = None
        self.std: Tensor | None = None
        self.valid_history: list[tuple[int, float]] = []
        self.best_step: int | None = None
        self.best_valid: float | None = None
        self.steps: int | None = None

    def _build_head(self, dim: int, num_classes: int) -> nn.Module:
        hidden = self.config.hidden_dim
        if hidden is None:
            return nn.Linear(dim, num_classes)
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def fit(
        self,
        train: FeatureSet,
        valid: FeatureSet | None,
        label_type: LabelType,
        num_classes: int,
        metric: str,
        slot_sizes: Sequence[int] | None = None,
    ) -> LinearProbe:
        """Train the head on `train` sub-clips; select on `valid` by `metric` when configured.

        Loss: cross-entropy on class ids for `label_type="single"`, BCE-with-logits on multi-hot
        targets for `"multi"`, one cross-entropy per slot summed for `"slots"` (sizes `slot_sizes`), MSE of
        one output against [N] float targets for `"regression"` (`num_classes` 1).
        """
        if len(train) == 0:
            raise ValueError("the train FeatureSet is empty; the probe needs at least one sub-clip")
        self._start(label_type, num_classes, metric, slot_sizes)
        for split, data in (("train", train), ("valid", valid)):
            if data is not None:
                _check_labels(data.labels, label_type, num_classes, split)
        features = train.features.float()
        self.mean, self.std = _standardization(features, self.config.standardize)
        inputs = (features - self.mean) / self.std
        targets = train.labels.long() if label_type == "single" else train.labels.float()
        generator = torch.Generator().manual_seed(self.config.seed)
        batches = _batch_indices(len(inputs), self.config.batch_size, generator)
        return self._train(
            lambda: (inputs[index := next(batches)], targets[index]),
            valid,
            metric,
            self.config.steps(len(inputs)),
        )

    def fit_stream(
        self,
        batches: Iterator[tuple[Tensor, Tensor]],
        valid: FeatureSet | None,
        label_type: LabelType,
        num_classes: int,
        metric: str,
        slot_sizes: Sequence[int] | None = None,
        stats_batches: int = 10,
        num_samples: int | None = None,
    ) -> LinearProbe:
        """As `fit`, on a stream of fresh (features [B, D], labels) batches, e.g. frozen embeddings of random
        training crops drawn anew at every step (HARES' downstream training); the standardisation statistics
        come from the first `stats_batches` batches, which are then trained on too. `num_samples`: the
        training set's size, which `ProbeConfig.epochs` needs."""
        steps = self.config.steps(num_samples)
        self._start(label_type, num_classes, metric, slot_sizes)
        first = [next(batches) for _ in range(stats_batches)]
        for _, labels in first:
            _check_labels(labels, label_type, num_classes, "train")
        self.mean, self.std = _standardization(
            torch.cat([f.float() for f, _ in first]), self.config.standardize
        )
        stream = itertools.chain(first, batches)

        def next_batch() -> tuple[Tensor, Tensor]:
            features, labels = next(stream)
            targets = labels.long() if label_type == "single" else labels.float()
            return (features.float() - self.mean) / self.std, targets

        return self._train(next_batch, valid, metric, steps)

    def _start(
        self, label_type: LabelType, num_classes: int, metric: str, slot_sizes: Sequence[int] | None
    ) -> None:
        """Check the task description and reset the fitted state."""
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(METRICS)}")
        binary = label_type == "multi" and num_classes == 1 and metric in BINARY_METRICS
        if (
            label_type in METRIC_LABEL_TYPE.values()
            and METRIC_LABEL_TYPE[metric] != label_type
            and not binary
        ):
            raise ValueError(
                f"metric {metric!r} needs label_type {METRIC_LABEL_TYPE[metric]!r}"
                + (" (or 'multi' with one class: one BCE output)" if metric in BINARY_METRICS else "")
                + f", got {label_type!r} with {num_classes} classes"
            )
        if label_type == "regression" and num_classes != 1:
            raise ValueError(
                f"label_type 'regression' has one output: num_classes must be 1, got {num_classes}"
            )
        if (label_type == "slots") != (slot_sizes is not None):
            raise ValueError(f"slot_sizes go with label_type 'slots' and only with it; got {label_type!r}")
        self.slot_sizes = None if slot_sizes is None else tuple(slot_sizes)
        self._slots = None if slot_sizes is None else slot_ranges(slot_sizes, num_classes)
        self.label_type, self.num_classes = label_type, num_classes
        self.valid_history, self.best_step, self.best_valid = [], None, None

    def _loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.label_type == "single":
            return F.cross_entropy(logits, targets)
        if self.label_type == "multi":
            return F.binary_cross_entropy_with_logits(logits, targets)
        if self.label_type == "regression":
            return F.mse_loss(logits[:, 0], targets)
        return sum(F.cross_entropy(logits[:, a:b], targets[:, a:b].argmax(dim=1)) for a, b in self._slots)

    def _train(
        self,
        next_batch: Callable[[], tuple[Tensor, Tensor]],
        valid: FeatureSet | None,
        metric: str,
        steps: int,
    ) -> LinearProbe:
        """`steps` steps of the configured optimizer and schedule on batches from `next_batch`, keeping the
        head with the best `valid` metric when validating."""
        cfg = self.config
        self.steps = steps
        if valid is not None and valid.features.shape[1] != self.mean.shape[0]:
            raise ValueError(f"valid features have D={valid.features.shape[1]}, train D={self.mean.shape[0]}")
        validate = valid is not None and cfg.select_on_valid
        best_state = None
        with torch.random.fork_rng(devices=[]), _intra_op_threads(cfg.num_threads):
            torch.manual_seed(cfg.seed)
            self.head = self._build_head(self.mean.shape[0], self.num_classes)
            optim = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
            optimizer = optim(self.head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            factor = (
                (lambda step: 1.0)
                if cfg.schedule == "constant"
                else (lambda step: warmup_cosine(step, cfg.warmup_steps, steps))
            )
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
            for step in range(1, steps + 1):
                inputs, targets = next_batch()
                loss = self._loss(self.head(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                if validate and (step % cfg.eval_every == 0 or step == steps):
                    value = self.evaluate(valid, metric)
                    self.valid_history.append((step, value))
                    if self.best_valid is None or value > self.best_valid:
                        self.best_step, self.best_valid = step, value
                        best_state = copy.deepcopy(self.head.state_dict())
        if best_state is not None:
            self.head.load_state_dict(best_state)
        return self

    @torch.no_grad()
    def predict_outputs(self, features: Tensor) -> Tensor:
        """[N, D] features -> [N, C] raw head outputs (logits; the prediction itself for regression)."""
        if self.head is None:
            raise RuntimeError("LinearProbe: predict called before fit")
        if features.ndim != 2 or features.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"expected [N, {self.mean.shape[0]}] features, got shape {tuple(features.shape)}"
            )
        return self.head((features.float() - self.mean) / self.std)

    def predict_scores(self, features: Tensor) -> Tensor:
        """[N, D] features -> [N, C] probabilities (softmax for single-label, sigmoid for multi-label), or
        [N, 1] predictions for regression."""
        logits = self.predict_outputs(features)
        if self.label_type == "regression":
            return logits
        if self.label_type == "single":
            return logits.softmax(dim=-1)
        if self.label_type == "multi":
            return logits.sigmoid()
        return torch.cat([logits[:, a:b].softmax(dim=-1) for a, b in self._slots], dim=1)

    def evaluate(self, test: FeatureSet, metric: str) -> float:
        """Clip-level `metric` on `test`: sub-clip probabilities (raw outputs for `RAW_OUTPUT_METRICS`)
        averaged per clip_id, then the metric."""
        predict = self.predict_outputs if metric in RAW_OUTPUT_METRICS else self.predict_scores
        clip_scores, clip_labels, _ = aggregate_subclips(predict(test.features), test.clip_id, test.labels)
        slot_sizes = self.slot_sizes if metric == "all_slots" else None
        return compute_metric(metric, clip_scores, clip_labels, slot_sizes)


@contextmanager
def _intra_op_threads(num_threads: int | None) -> Iterator[None]:
    """Run the body with `num_threads` torch intra-op threads (unchanged for None), then restore."""
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _standardization(features: Tensor, standardize: bool) -> tuple[Tensor, Tensor]:
    """Per-dimension [D] mean and std of [N, D] train features (0 and 1 when not standardising).

    Constant dimensions keep std 1 so that they stay finite on other splits.
    """
    dim = features.shape[1]
    if not standardize:
        return torch.zeros(dim), torch.ones(dim)
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False)
    return mean, torch.where(std > 1e-6, std, torch.ones_like(std))


def _check_labels(labels: Tensor, label_type: str, num_classes: int, split: str) -> None:
    """Clear error when `labels` do not match `label_type` ("single": [N] ids, "multi": [N, C] 0/1,
    "regression": [N] floats)."""
    if label_type == "single":
        if labels.ndim != 1 or labels.is_floating_point():
            raise ValueError(
                f"{split} labels must be [N] class ids for label_type='single', got {labels.dtype} "
                f"{tuple(labels.shape)}"
            )
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(
                f"{split} labels span [{labels.min()}, {labels.max()}], outside [0, {num_classes})"
            )
    elif label_type in ("multi", "slots"):
        if labels.ndim != 2 or labels.shape[1] != num_classes:
            raise ValueError(
                f"{split} labels must be [N, {num_classes}] multi-hot for label_type={label_type!r}, got "
                f"{tuple(labels.shape)}"
            )
    elif label_type == "regression":
        if labels.ndim != 1 or not labels.is_floating_point():
            raise ValueError(
                f"{split} labels must be [N] float targets for label_type='regression', got {labels.dtype} "
                f"{tuple(labels.shape)}"
            )
    else:
        raise ValueError(f"label_type must be 'single', 'multi', 'slots' or 'regression', got {label_type!r}")
