"""Contrastive Quant's evaluation protocol: linear probe and fine-tuning at full precision and at b bits.

The paper (Tables 1, 4, 6, 7, 9) fine-tunes the pre-trained encoder "under a fixed precision, i.e.
full precision (FP) or 4-bit, with a limited amount of labeled data (10% or 1%)", and also reports a
linear evaluation (Tables 2, 5, 8). Here, both at any precision:

- `linear_eval`: the frozen encoder, fake-quantized at `bits` (`quantize_model` + a fixed precision,
  on a copy), embeds every image once; a `LinearProbe` is trained on the cached train features (all
  of them, or a class-balanced label fraction) and scored on the test split.
- `finetune_eval`: `SupervisedClassifier` (encoder + linear head) trained end to end on a label
  fraction of the train split, its encoder quantized at `bits` during training and testing by the
  `FixedPrecision` callback; scored on the test split.
- `evaluate_contrastive_quant`: both, as the paper's table: rows are the protocols ("fine-tune 10%
  labels", "fine-tune 1% labels", "linear eval"), columns the precisions ("FP", "4-bit"), with the
  method's name as the report's suite (several methods stack as row groups); `write_report` output.

What is quantized: every `nn.Conv2d` / `nn.Linear` of the encoder (weights per output channel,
input activations per tensor; `skip_first` / `skip_last` keep the first / last one at full
precision), not the probe or the fine-tuning head: the CPT CIFAR ResNets that CQ builds on quantize
the stem and all convolutions but keep the classifier at full precision. An encoder that already
holds quant layers (e.g. trained by Contrastive Quant) is not converted again, only set to `bits`.

Activation ranges (`QuantizerConfig.activation_range`): "running" (default, CPT's) quantizes each
layer input in eval mode with the running min / range kept in training, so a sample's quantized
features do not depend on the other samples of its batch. Fine-tuning records them as it trains at
`bits` (momentum 0.9, from CPT's initial 0, or from the values an encoder trained by Contrastive
Quant carries). `linear_eval` uses an encoder's recorded ranges; an encoder without them (e.g. one
trained at full precision only) has them measured first on the train split (`measuring_ranges`:
CPT's measure mode, the mean over the batches). "batch" uses each input tensor's own min / max, so
features depend on the batch; the evaluation loaders run in index order, so those results are
reproducible for a given batch size.

The paper's fine-tuning schedules (Appendix A): CIFAR-100, SGD momentum 0.9, cosine decay from lr
0.1, 50 epochs (the defaults here); ImageNet, Nesterov SGD ("sgd" in timm), lr 0.1, batch 512, no
weight decay, 30 epochs (10%) or 60 epochs (1%). Linear evaluation on ImageNet: 90 epochs, lr 0.2.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import nn

from ssl_lightning.data import ImageDataModule
from ssl_lightning.data.label_subsets import fraction_name, label_fraction_subset
from ssl_lightning.eval.evaluate import resolve_device
from ssl_lightning.eval.features import FeatureSet, extract_features
from ssl_lightning.eval.metrics import aggregate_subclips, compute_metric
from ssl_lightning.eval.probe import LinearProbe, ProbeConfig
from ssl_lightning.eval.report import TaskResult, write_report
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.methods.supervised import SupervisedClassifier
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.quantization import QuantizerConfig, check_bits, is_full_precision
from ssl_lightning.nn.quantized_model import (
    has_running_ranges,
    measuring_ranges,
    quant_layers,
    quantize_model,
    set_precision,
)

METRIC = "accuracy"
PAPER_BITS: tuple[int | None, ...] = (None, 4)
PAPER_FRACTIONS: tuple[float, ...] = (0.1, 0.01)
FINETUNE_OPTIM = OptimizerConfig(name="momentum", lr=0.1, weight_decay=0.0, momentum=0.9)
"""The paper's CIFAR-100 fine-tuning optimizer: SGD with momentum 0.9, cosine decay from 0.1."""


def precision_name(bits: int | None) -> str:
    """Column name of a precision: None (or >= 32) -> "FP", 4 -> "4-bit"."""
    check_bits(bits)
    return "FP" if is_full_precision(bits) else f"{bits}-bit"


def fix_precision(
    encoder: nn.Module,
    bits: int | None,
    skip_first: bool = False,
    skip_last: bool = False,
    quantizer: QuantizerConfig | None = None,
) -> nn.Module:
    """Set `encoder`'s precision to `bits` in place, converting it with `quantize_model` first unless
    it already holds quant layers (full precision needs no conversion). Returns the encoder (or the
    new layer when `encoder` itself is a plain conv / linear layer)."""
    check_bits(bits)
    if not quant_layers(encoder):
        if is_full_precision(bits):
            return encoder
        encoder = quantize_model(encoder, skip_first, skip_last, quantizer)
    set_precision(encoder, bits)
    return encoder


def method_at_precision(
    method: SSLMethod,
    bits: int | None,
    skip_first: bool = False,
    skip_last: bool = False,
    quantizer: QuantizerConfig | None = None,
) -> SSLMethod:
    """A copy of `method` whose encoder runs at fixed `bits` (`method` itself when nothing changes)."""
    if is_full_precision(bits) and not quant_layers(method.encoder):
        return method
    quantized = copy.deepcopy(method)
    quantized.encoder = fix_precision(quantized.encoder, bits, skip_first, skip_last, quantizer)
    return quantized


class FixedPrecision(L.Callback):
    """Fake-quantize `pl_module.encoder` once at setup and fix its precision at `bits` (None: FP).

    For fine-tuning at a fixed precision, e.g. `SupervisedClassifier` at 4 bits. The encoder keeps its
    parameters and their state_dict keys and adds each quant layer's running activation range
    (`RANGE_BUFFERS`), recorded while it trains at `bits` and used in eval mode; apply the callback
    again (e.g. to `trainer.test`) to evaluate at `bits`.

    Args:
        bits: precision of every quant layer (None: full precision).
        skip_first, skip_last: keep the first / last conv or linear layer at full precision.
        quantizer: how the layers quantize (default `QuantizerConfig()`).
    """

    def __init__(
        self,
        bits: int | None,
        skip_first: bool = False,
        skip_last: bool = False,
        quantizer: QuantizerConfig | None = None,
    ) -> None:
        check_bits(bits)
        self.bits, self.skip_first, self.skip_last, self.quantizer = bits, skip_first, skip_last, quantizer

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        encoder = getattr(pl_module, "encoder", None)
        if not isinstance(encoder, nn.Module):
            raise TypeError(
                f"FixedPrecision quantizes `pl_module.encoder`; {type(pl_module).__name__} has no encoder "
                "module"
            )
        pl_module.encoder = fix_precision(encoder, self.bits, self.skip_first, self.skip_last, self.quantizer)


def feature_subset(features: FeatureSet, fraction: float | None, seed: int) -> FeatureSet:
    """The rows of the clips in a class-balanced `fraction` of the clips of `features` (None: all).

    Clips are ranked in ascending clip_id order, so for image features in index order this is the
    subset a datamodule with `label_fraction=fraction` and the same seed trains on.
    """
    if fraction is None:
        return features
    if features.labels.ndim != 1:
        raise ValueError("label fractions need single-label features ([N] class ids)")
    clip_ids, inverse = torch.unique(features.clip_id, sorted=True, return_inverse=True)
    clip_labels = features.labels.new_zeros(len(clip_ids)).scatter_(0, inverse, features.labels)
    keep = torch.isin(inverse, label_fraction_subset(clip_labels, fraction, seed))
    return FeatureSet(features.features[keep], features.labels[keep], features.clip_id[keep])


def _separate_valid(datamodule: ImageDataModule) -> bool:
    """Whether the valid split is other images than the test split (False for val_fraction=0)."""
    indices = datamodule.split_indices
    same_source = datamodule.sources["valid"] is datamodule.sources["test"]
    return not (same_source and torch.equal(indices["valid"], indices["test"]))


def _check_full_labels(datamodule: ImageDataModule) -> None:
    if datamodule.label_fraction is not None:
        raise ValueError(
            f"pass a datamodule with label_fraction=None (got {datamodule.label_fraction}); the label "
            "fractions of the evaluation are given to it with `fractions`"
        )


def linear_eval(
    method: SSLMethod,
    datamodule: ImageDataModule,
    bits: Sequence[int | None] = PAPER_BITS,
    fractions: Sequence[float | None] = (None,),
    probe: ProbeConfig = ProbeConfig(),
    name: str = "model",
    device: str = "auto",
    skip_first: bool = False,
    skip_last: bool = False,
    quantizer: QuantizerConfig | None = None,
) -> list[TaskResult]:
    """Linear probe of the frozen `method` at each precision of `bits` and each label fraction.

    At b bits with running activation ranges, an encoder without recorded ranges has them measured
    on the train split first (on a copy; see the module docstring).

    Features of the train, valid and test splits are extracted once per precision; the probe trains
    on the train features of each `fractions` entry (class-balanced, seeded by the datamodule's seed)
    and selects on valid only when valid is not the test split. One `TaskResult` per (fraction,
    bits): suite `name`, task "linear eval" (+ " <f>% labels"), model "FP" / "<b>-bit", test accuracy.
    """
    _check_full_labels(datamodule)
    datamodule.setup("fit")
    target = resolve_device(device)
    use_valid = _separate_valid(datamodule)
    results = []
    for precision in bits:
        start = time.perf_counter()
        model = method_at_precision(method, precision, skip_first, skip_last, quantizer)
        was_training, was_on = model.training, next(model.parameters()).device
        model.to(target).eval()
        if not is_full_precision(precision) and not has_running_ranges(model.encoder):
            with measuring_ranges(model.encoder):
                extract_features(model.embed, datamodule.subclip_dataloader("train"), target)
        splits = ("train", "valid", "test") if use_valid else ("train", "test")
        features = {
            split: extract_features(model.embed, datamodule.subclip_dataloader(split), target)
            for split in splits
        }
        model.train(was_training).to(was_on)
        extraction = time.perf_counter() - start
        for fraction in fractions:
            start = time.perf_counter()
            train = feature_subset(features["train"], fraction, datamodule.seed)
            head = LinearProbe(probe).fit(
                train, features.get("valid"), "single", datamodule.num_classes, METRIC
            )
            task = "linear eval" if fraction is None else f"linear eval {fraction_name(fraction)}"
            extra = {"bits": precision, "label_fraction": fraction, "best_step": head.best_step}
            value = head.evaluate(features["test"], METRIC)
            seconds = extraction + time.perf_counter() - start
            num_test = features["test"].num_clips
            results.append(_result(name, task, precision, value, train.num_clips, num_test, seconds, extra))
    return results


def finetune_eval(
    encoder: nn.Module,
    datamodule: ImageDataModule,
    fractions: Sequence[float | None] = PAPER_FRACTIONS,
    bits: Sequence[int | None] = PAPER_BITS,
    optim: OptimizerConfig = FINETUNE_OPTIM,
    max_epochs: int | None = 50,
    max_steps: int = -1,
    name: str = "model",
    seed: int = 0,
    accelerator: str = "auto",
    skip_first: bool = False,
    skip_last: bool = False,
    quantizer: QuantizerConfig | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
) -> list[TaskResult]:
    """Fine-tune copies of `encoder` + a linear head on each label fraction at each precision.

    For every (fraction, bits): the datamodule with `label_fraction=fraction`,
    `lightning.seed_everything(seed)`, a fresh `SupervisedClassifier` on a trainable copy of `encoder`,
    a `Trainer` with `FixedPrecision(bits)` for `max_epochs` / `max_steps` (no validation, no logger
    or checkpoints; `trainer_kwargs` adds more), then the test accuracy with the encoder still at
    `bits`. One `TaskResult` each: suite `name`, task "fine-tune <f>% labels", model "FP" / "<b>-bit".
    """
    _check_full_labels(datamodule)
    results = []
    for fraction in fractions:
        labelled = datamodule.with_label_fraction(fraction)
        labelled.setup("fit")
        for precision in bits:
            start = time.perf_counter()
            L.seed_everything(seed, verbose=False)
            trainable = copy.deepcopy(encoder).requires_grad_(True)
            model = SupervisedClassifier(
                trainable, num_classes=labelled.num_classes, label_type="single", optim=optim
            )
            trainer = L.Trainer(
                **{
                    "accelerator": accelerator,
                    "devices": 1,
                    "max_epochs": max_epochs,
                    "max_steps": max_steps,
                    "callbacks": [FixedPrecision(precision, skip_first, skip_last, quantizer)],
                    "logger": False,
                    "enable_checkpointing": False,
                    "enable_progress_bar": False,
                    "enable_model_summary": False,
                    "limit_val_batches": 0,
                    **(trainer_kwargs or {}),
                }
            )
            trainer.fit(model, datamodule=labelled)
            device = trainer.strategy.root_device
            model.to(device).eval()
            test = extract_features(model.predict_scores, labelled.subclip_dataloader("test"), device)
            scores, labels, _ = aggregate_subclips(test.features, test.clip_id, test.labels)
            value = compute_metric(METRIC, scores, labels)
            extra = {"bits": precision, "label_fraction": fraction, "steps": trainer.global_step}
            task = f"fine-tune {fraction_name(fraction)}"
            num_train = len(labelled.split_indices["train"])
            seconds = time.perf_counter() - start
            results.append(_result(name, task, precision, value, num_train, test.num_clips, seconds, extra))
    return results


def evaluate_contrastive_quant(
    method: SSLMethod,
    datamodule: ImageDataModule,
    out_dir: str | Path | None = None,
    bits: Sequence[int | None] = PAPER_BITS,
    fractions: Sequence[float | None] = PAPER_FRACTIONS,
    linear_fractions: Sequence[float | None] = (None,),
    probe: ProbeConfig = ProbeConfig(),
    optim: OptimizerConfig = FINETUNE_OPTIM,
    max_epochs: int | None = 50,
    max_steps: int = -1,
    name: str = "model",
    seed: int = 0,
    device: str = "auto",
    skip_first: bool = False,
    skip_last: bool = False,
    quantizer: QuantizerConfig | None = None,
) -> list[TaskResult]:
    """The paper's table for one method: fine-tuning on `fractions` and linear evaluation on
    `linear_fractions` (rows), each at every precision of `bits` (columns).

    Writes results.{md,csv,json,png} to `out_dir` when given. `device` runs the linear evaluation
    and picks the fine-tuning accelerator ("auto": CUDA when available).
    """
    target = resolve_device(device)
    quant = {"skip_first": skip_first, "skip_last": skip_last, "quantizer": quantizer}
    results = finetune_eval(
        method.encoder,
        datamodule,
        fractions,
        bits,
        optim,
        max_epochs,
        max_steps,
        name,
        seed,
        accelerator="gpu" if target.type == "cuda" else "cpu",
        **quant,
    )
    results += linear_eval(method, datamodule, bits, linear_fractions, probe, name, str(target), **quant)
    if out_dir is not None:
        write_report(results, Path(out_dir), title=f"Contrastive Quant evaluation: {name}")
    return results


def _result(
    name: str,
    task: str,
    bits: int | None,
    value: float,
    num_train: int,
    num_test: int,
    seconds: float,
    extra: dict[str, Any],
) -> TaskResult:
    return TaskResult(
        suite=name,
        task=task,
        model=precision_name(bits),
        metric=METRIC,
        value=value,
        num_train=num_train,
        num_test=num_test,
        seconds=seconds,
        extra=extra,
    )
