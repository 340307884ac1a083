"""Suite evaluation: frozen-feature probes of methods against random-init and supervised baselines.

    ssl-lightning evaluate --suite hares-mini --ckpt runs/version_0/checkpoints/last.ckpt

For each task, each model's frozen `embed` features of every sub-clip are extracted once, a
linear probe is trained on the train split (model selection on valid), and test sub-clip scores
are averaged per clip before the task metric. The supervised baseline trains the same encoder
architecture end to end on the task labels.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from jsonargparse import ArgumentParser, lazy_instance
from torch import nn

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.eval.features import FeatureSet, extract_features
from ssl_lightning.eval.metrics import aggregate_subclips, compute_metric
from ssl_lightning.eval.probe import LinearProbe, ProbeConfig
from ssl_lightning.eval.report import TaskResult, format_table, plot_embeddings, write_report
from ssl_lightning.eval.suites import Suite, get_suite
from ssl_lightning.methods import FrozenEncoder, SSLMethod, SupervisedClassifier, load_method
from ssl_lightning.nn.optim import OptimizerConfig

BASELINES = ("random-init", "supervised")


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def random_init_like(encoder: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `encoder` with freshly initialised weights (the frozen random-init baseline).

    An encoder with its own `init_weights()` uses it; otherwise every submodule's
    `reset_parameters()` (PyTorch's default initialisation) is called.
    """
    fresh = copy.deepcopy(encoder)
    torch.manual_seed(seed)
    if hasattr(fresh, "init_weights"):
        fresh.init_weights()
    else:
        for module in fresh.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


class SuiteRunner:
    """Runs probes (and the supervised baseline) of models over the tasks of one suite."""

    def __init__(
        self,
        suite: Suite,
        tasks: list[str] | None = None,
        probe: ProbeConfig | None = None,
        data_root: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        self.suite, self.specs = suite, suite.select(tasks)
        self.probe = probe or ProbeConfig()
        self.data_kwargs = {"root": data_root, "batch_size": batch_size, "num_workers": num_workers}
        self.device = resolve_device(device)
        self.progress = progress
        self._datamodules: dict[str, L.LightningDataModule] = {}

    def datamodule(self, task: str) -> L.LightningDataModule:
        if task not in self._datamodules:
            dm = self.suite.datamodule(task, **self.data_kwargs)
            dm.prepare_data()
            dm.setup("fit")
            self._datamodules[task] = dm
        return self._datamodules[task]

    def features(self, embed_fn, task: str, split: str, desc: str) -> FeatureSet:
        loader = self.datamodule(task).subclip_dataloader(split)
        return extract_features(embed_fn, loader, self.device, progress=self.progress, desc=desc)

    def probe_model(self, name: str, method: SSLMethod, plot_dir: Path | None = None) -> list[TaskResult]:
        """Linear-probe results of one frozen method on every task."""
        method = method.to(self.device).eval()
        results = []
        for spec in self.specs:
            start = time.perf_counter()
            train, valid, test = (
                self.features(method.embed, spec.name, split, f"{name}:{spec.name}:{split}")
                for split in ("train", "valid", "test")
            )
            probe = LinearProbe(self.probe).fit(train, valid, spec.label_type, spec.num_classes, spec.metric)
            value = probe.evaluate(test, spec.metric)
            results.append(self._result(spec, name, value, train, test, start))
            if plot_dir is not None and spec.label_type == "single":
                plot_embeddings(
                    test.features, test.labels, spec.classes, plot_dir / f"tsne_{name}_{spec.name}.png"
                )
        return results

    def supervised(
        self, name: str, encoder: nn.Module, steps: int, optim: OptimizerConfig
    ) -> list[TaskResult]:
        """The encoder trained end to end on each task's labels, scored on test sub-clips."""
        results = []
        for spec in self.specs:
            start = time.perf_counter()
            dm = self.datamodule(spec.name)
            model = SupervisedClassifier(
                random_init_like(encoder),
                num_classes=spec.num_classes,
                label_type=spec.label_type,
                optim=optim,
            )
            trainer = L.Trainer(
                max_steps=steps,
                accelerator="gpu" if self.device.type == "cuda" else "cpu",
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_model_summary=False,
                enable_progress_bar=self.progress,
                limit_val_batches=0,
            )
            trainer.fit(model, train_dataloaders=dm.train_dataloader())
            model = model.to(self.device).eval()
            train_set = self.features(model.predict_scores, spec.name, "train", f"{name}:{spec.name}:train")
            test = self.features(model.predict_scores, spec.name, "test", f"{name}:{spec.name}:test")
            scores, labels, _ = aggregate_subclips(test.features, test.clip_id, test.labels)
            value = compute_metric(spec.metric, scores, labels)
            results.append(self._result(spec, name, value, train_set, test, start))
        return results

    def _result(
        self, spec, model: str, value: float, train: FeatureSet, test: FeatureSet, start: float
    ) -> TaskResult:
        return TaskResult(
            suite=self.suite.name,
            task=spec.name,
            model=model,
            metric=spec.metric,
            value=value,
            num_train=int(train.clip_id.unique().numel()),
            num_test=int(test.clip_id.unique().numel()),
            seconds=time.perf_counter() - start,
        )


def checkpoint_names(entries: Sequence[str]) -> dict[str, str]:
    """Column name -> path for `--ckpt` entries `NAME=PATH` or `PATH` (named by its file stem when it is the
    only one, else by the whole path)."""
    named = {}
    for entry in entries:
        name, sep, path = str(entry).partition("=")
        if not sep:
            name, path = (Path(entry).stem if len(entries) == 1 else str(entry)), str(entry)
        if not name or not path:
            raise ValueError(f"--ckpt {entry!r}: expected PATH or NAME=PATH")
        if name in named or name in BASELINES:
            raise ValueError(f"--ckpt {entry!r}: column name {name!r} is already taken; use NAME=PATH")
        named[name] = path
    return named


def evaluate(
    suite: str = "hares-mini",
    ckpt: list[str] | None = None,
    baselines: list[str] | None = None,
    tasks: list[str] | None = None,
    encoder: nn.Module = lazy_instance(ByolAEncoder, d=256, channels=16),
    probe: ProbeConfig = ProbeConfig(),
    supervised_steps: int = 100,
    supervised_optim: OptimizerConfig = OptimizerConfig(lr=1e-3, weight_decay=0.01, warmup_steps=0.1),
    out_dir: str = "runs/evaluate",
    data_root: str | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    device: str = "auto",
    seed: int = 0,
    plot: bool = True,
    progress: bool = True,
) -> list[TaskResult]:
    """Evaluate checkpoints and baselines on a suite; print and write the per-task table.

    Args:
        suite: suite name (`hares-mini`).
        ckpt: checkpoints of fitted methods (`last.ckpt` of a `fit` run); each becomes a column, named
            by a `NAME=PATH` entry, else by the file name (one checkpoint) or the path.
        baselines: any of `random-init` and `supervised` (both by default; `[]` for none). They use
            the encoder architecture of the first checkpoint, or `encoder` when none is given.
        tasks: subset of the suite's tasks (all by default).
        encoder: encoder for the baselines when no checkpoint is given.
        probe: linear-probe settings (Adam, warmup + cosine, selection on valid).
        supervised_steps: training steps of the supervised baseline per task.
        supervised_optim: its optimizer and schedule.
        out_dir: where results.{md,csv,json,png} and t-SNE plots go.
        data_root: data root of the suite (default `$SSL_LIGHTNING_DATA` or `~/.cache/ssl_lightning`).
        device: `auto`, `cpu` or `cuda`.
        seed: seeds the baselines' initialisation and the probes.
        plot: write t-SNE plots of the test embeddings of each probed model.
    """
    L.seed_everything(seed, verbose=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # a trainer per task: keep output short
    baselines = list(BASELINES) if baselines is None else baselines
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {list(BASELINES)}")
    methods = {name: load_method(path) for name, path in checkpoint_names(ckpt or []).items()}
    if methods:
        encoder = next(iter(methods.values())).encoder
    runner = SuiteRunner(get_suite(suite), tasks, probe, data_root, batch_size, num_workers, device, progress)
    out = Path(out_dir)
    plot_dir = out if plot else None
    results: list[TaskResult] = []
    if "random-init" in baselines:
        results += runner.probe_model("random-init", FrozenEncoder(random_init_like(encoder, seed)), plot_dir)
    if "supervised" in baselines:
        results += runner.supervised("supervised", encoder, supervised_steps, supervised_optim)
    for name, method in methods.items():
        results += runner.probe_model(name, method, plot_dir)
    files = write_report(results, out, title=f"{suite} linear-probe evaluation")
    print(format_table(results))
    print(f"report: {', '.join(str(p) for p in files.values())}")
    return results


def main(args: Sequence[str] | None = None) -> None:
    """`ssl-lightning evaluate ...`: parse arguments (and `--config` files) and run `evaluate`."""
    parser = ArgumentParser(prog="ssl-lightning evaluate", description=evaluate.__doc__.splitlines()[0])
    parser.add_argument("--config", action="config", help="YAML file with any of these arguments")
    parser.add_function_arguments(evaluate)
    cfg = parser.instantiate(parser.parse_args(args))
    try:
        evaluate(**{name: cfg[name] for name in inspect.signature(evaluate).parameters})
    except (ValueError, FileNotFoundError) as err:  # bad names or paths: a usage error, not a crash
        parser.error(str(err))
