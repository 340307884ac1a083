"""Suite evaluation: frozen-feature probes of methods against random-init and supervised baselines.

    ssl-lightning evaluate --suite hares-mini --ckpt runs/version_0/checkpoints/last.ckpt
    ssl-lightning evaluate --ckpt iter1=runs/a/last.ckpt iter2=runs/b/last.ckpt --tasks env_events env_scenes

For each task, each model's frozen `embed` features of every sub-clip are extracted once, a
linear probe is trained on the train split (model selection on valid), and test sub-clip scores
are averaged per clip before the task metric. The supervised baseline trains the same encoder
architecture end to end on the task labels.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import docstring_parser
import lightning as L
import torch
from jsonargparse import ArgumentParser, lazy_instance
from torch import Tensor, nn

from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.checkpoint_io import CheckpointReadError, ensure_writable_folder
from ssl_lightning.eval.features import FeatureSet, extract_features
from ssl_lightning.eval.metrics import aggregate_subclips, compute_metric
from ssl_lightning.eval.probe import LinearProbe, ProbeConfig
from ssl_lightning.eval.registry import get_suite
from ssl_lightning.eval.report import TaskResult, plot_embeddings, write_report
from ssl_lightning.eval.suite_report import format_suite_table, write_task_files
from ssl_lightning.eval.suites import Suite, SuiteTask
from ssl_lightning.eval.svm import LinearSVMProbe, select_c
from ssl_lightning.methods import FrozenEncoder, SSLMethod, SupervisedClassifier, load_method
from ssl_lightning.nn.optim import OptimizerConfig

BASELINES = ("random-init", "supervised")
LIST_ARGUMENTS = {"ckpt": "+", "tasks": "+", "baselines": "*", "paper_models": "*"}
"""`evaluate` arguments that take several values on the command line, with their argparse `nargs`."""


Embeddings = tuple[FeatureSet, Sequence[str]]
"""Test features of one model on one task, and the task's class names (what a t-SNE plot needs)."""


class ReportWriteError(OSError):
    """The evaluation finished (its table is printed) but its report files could not be written."""


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


PROTOCOLS = ("cached", "random_crop")
"""How probe heads train: on features cached once per split (the fast path), or on the features of fresh
random training crops at every step (the paper's downstream training, one encoder pass per step)."""


class SuiteRunner:
    """Runs probes (and the supervised baseline) of models over the tasks of one suite.

    Each task's classes and label type come from its datamodule; the task (`SuiteTask`) says how it is
    probed: metric, head, evaluation crops and folds. Cross-validated tasks run once per fold and report the
    mean. Valid and test scores are clip-level (sub-clip probabilities averaged per clip).
    """

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
        protocol: str = "cached",
        svm: bool = False,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
        self.suite, self.specs = suite, suite.select(tasks)
        self.probe, self.protocol, self.svm = probe or suite.probe or ProbeConfig(), protocol, svm
        self.data_kwargs = {"root": data_root, "batch_size": batch_size, "num_workers": num_workers}
        self.device = resolve_device(device)
        self.progress = progress
        self._datamodules: dict[tuple[str, int | None], L.LightningDataModule] = {}

    def datamodule(self, task: str, fold: int | None = None) -> L.LightningDataModule:
        """The set-up datamodule of `task` (of `fold` for a cross-validated task), built once."""
        if (task, fold) not in self._datamodules:
            dm = self.suite.datamodule(task, fold=fold, **self.data_kwargs)
            dm.prepare_data()
            dm.setup("fit")
            self._datamodules[task, fold] = dm
        return self._datamodules[task, fold]

    def write_splits(self, folder: Path) -> dict[str, Path]:
        """The splits the library made itself (datamodules with `write_split_file`: Birdsong, TUT18,
        VoxForge) as list files `<folder>/<task>.tsv`, so that a report records exactly what it ran on."""
        paths = {}
        for (task, _), dm in self._datamodules.items():
            if hasattr(dm, "write_split_file") and getattr(dm, "root", None) is not None:
                folder.mkdir(parents=True, exist_ok=True)
                dm.write_split_file(folder / f"{task}.tsv")
                paths[f"split_{task}"] = folder / f"{task}.tsv"
        return paths

    def features(
        self, embed_fn, spec: SuiteTask, split: str, desc: str, fold: int | None = None
    ) -> FeatureSet:
        """Frozen features of every sub-clip of `split` (valid and test: the task's evaluation crops)."""
        crops = None if split == "train" else spec.eval_crops
        loader = self.datamodule(spec.name, fold).subclip_dataloader(split, crops=crops)
        return extract_features(embed_fn, loader, self.device, progress=self.progress, desc=desc)

    def _stream(self, embed_fn, dm: L.LightningDataModule) -> Iterator[tuple[Tensor, Tensor]]:
        """Endless (features [B, D], labels) of fresh random training crops, epoch after epoch."""
        for epoch in itertools.count():
            loader = dm.train_dataloader()
            if hasattr(loader, "set_epoch"):
                loader.set_epoch(epoch)
            for batch in loader:
                with torch.inference_mode():
                    embedding = embed_fn({k: v.to(self.device) for k, v in batch.items()})
                yield embedding.float().cpu().clone(), batch["label"].clone()

    def _probe_fold(self, name: str, method: SSLMethod, spec: SuiteTask, fold: int | None):
        """(test value, train features or None, test features) of one fold of one task."""
        dm = self.datamodule(spec.name, fold)
        tag = f"{name}:{spec.name}" + ("" if fold is None else f":fold{fold}")
        slot_sizes = getattr(dm, "slot_sizes", None)
        label_type = "slots" if slot_sizes is not None else dm.label_type
        config = self.probe if spec.hidden_dim is None else replace(self.probe, hidden_dim=spec.hidden_dim)
        if spec.probe_batch_size is not None:
            config = replace(config, batch_size=spec.probe_batch_size)
        probe = LinearProbe(config)
        valid = self.features(method.embed, spec, "valid", f"{tag}:valid", fold)
        task = (label_type, dm.num_classes, spec.metric, slot_sizes)
        if self.protocol == "cached":
            train = self.features(method.embed, spec, "train", f"{tag}:train", fold)
            probe.fit(train, valid, *task)
        else:
            train = None
            num_samples = len(dm.dataset("train", "random_crop"))
            probe.fit_stream(self._stream(method.embed, dm), valid, *task, num_samples=num_samples)
        test = self.features(method.embed, spec, "test", f"{tag}:test", fold)
        return probe.evaluate(test, spec.metric), train, test

    def _svm_folds(self, name: str, method: SSLMethod, spec: SuiteTask) -> tuple[dict, dict[float, float]]:
        """(test accuracy, train and test features) per fold of a linear SVM whose C is picked on the first
        fold's valid split (`ssl_lightning.eval.svm`), and the valid accuracy of every C."""
        folds = spec.folds or (None,)
        out, valid_accuracy = {}, {}
        for fold in folds:
            tag = f"{name}:{spec.name}" + ("" if fold is None else f":fold{fold}")
            num_classes = self.datamodule(spec.name, fold).num_classes
            train = self.features(method.embed, spec, "train", f"{tag}:train", fold)
            if fold == folds[0]:
                valid = self.features(method.embed, spec, "valid", f"{tag}:valid", fold)
                c, valid_accuracy = select_c(train, valid, num_classes, seed=self.probe.seed)
            test = self.features(method.embed, spec, "test", f"{tag}:test", fold)
            value = LinearSVMProbe(c, self.probe.seed).fit(train).evaluate(test, num_classes)
            out[fold] = (value, train, test)
        return out, valid_accuracy

    def probe_model(
        self, name: str, method: SSLMethod, embeddings: dict[str, Embeddings] | None = None
    ) -> list[TaskResult]:
        """Linear-probe results of one frozen method on every task.

        `embeddings`, when given, receives the test features and class names of each single-label task
        under `tsne_<model>_<task>`, for plots drawn once the table is out.
        """
        method = method.to(self.device).eval()
        results = []
        for spec in self.specs:
            start = time.perf_counter()
            extra = {"protocol": self.protocol}
            if self.svm and spec.svm:
                folds, valid_accuracy = self._svm_folds(name, method, spec)
                extra = {"protocol": "linear SVM on cached features", "svm_valid_accuracy": valid_accuracy}
            else:
                folds = {fold: self._probe_fold(name, method, spec, fold) for fold in spec.folds or (None,)}
            values = [value for value, _, _ in folds.values()]
            _, train, test = folds[next(iter(folds))]
            dm = self.datamodule(spec.name, next(iter(folds)))
            if spec.folds:
                extra["folds"] = dict(zip(spec.folds, values, strict=True))
            results.append(self._result(spec, name, sum(values) / len(values), dm, train, test, start, extra))
            self._report_progress(results[-1], len(results), len(self.specs))
            if embeddings is not None and dm.label_type == "single":
                embeddings[f"tsne_{name}_{spec.name}"] = (test, dm.classes)
        return results

    def supervised(
        self, name: str, encoder: nn.Module, steps: int, optim: OptimizerConfig
    ) -> list[TaskResult]:
        """The encoder trained end to end on each task's labels, scored on test sub-clips."""
        results = []
        for spec in self.specs:
            start = time.perf_counter()
            fold = spec.folds[0] if spec.folds else None
            dm = self.datamodule(spec.name, fold)
            if getattr(dm, "slot_sizes", None) is not None:
                raise ValueError(
                    f"the supervised baseline has no slot-filling head for task {spec.name!r}; leave it out "
                    "with --tasks or --baselines random-init"
                )
            model = SupervisedClassifier(
                random_init_like(encoder),
                num_classes=dm.num_classes,
                label_type=dm.label_type,
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
            tag = f"{name}:{spec.name}"
            train_set = self.features(model.predict_scores, spec, "train", f"{tag}:train", fold)
            test = self.features(model.predict_scores, spec, "test", f"{tag}:test", fold)
            scores, labels, _ = aggregate_subclips(test.features, test.clip_id, test.labels)
            value = compute_metric(spec.metric, scores, labels)
            extra = {} if fold is None else {"folds": {fold: value}}
            results.append(self._result(spec, name, value, dm, train_set, test, start, extra))
            self._report_progress(results[-1], len(results), len(self.specs))
        return results

    def _report_progress(self, result: TaskResult, done: int, total: int) -> None:
        """One line per finished task (the per-split bars vanish when done)."""
        if self.progress:
            print(
                f"[{done}/{total}] {result.model} {result.task}: {result.metric} {100 * result.value:.1f} "
                f"({result.seconds:.0f} s)",
                flush=True,
            )

    def _result(
        self,
        spec: SuiteTask,
        model: str,
        value: float,
        dm: L.LightningDataModule,
        train: FeatureSet | None,
        test: FeatureSet,
        start: float,
        extra: dict,
    ) -> TaskResult:
        """The result row, with the data's provenance (canonical split or not) in `extra`."""
        provenance = {key: getattr(dm, key) for key in ("canonical", "split_note") if hasattr(dm, key)}
        num_train = len(dm.dataset("train", "random_crop")) if train is None else train.num_clips
        return TaskResult(
            suite=self.suite.name,
            task=spec.name,
            model=model,
            metric=spec.metric,
            value=value,
            num_train=int(num_train),
            num_test=test.num_clips,
            seconds=time.perf_counter() - start,
            extra={**provenance, **extra},
        )


def check_paper_models(suite: Suite, paper_models: Sequence[str] | None) -> list[str]:
    """`paper_models` (the suite's default selection when None), checked against the suite's published
    models."""
    chosen = list(suite.paper_models if paper_models is None else paper_models)
    known = {model for task in suite.tasks.values() for model in task.paper}
    if set(chosen) - known:
        raise ValueError(
            f"unknown paper_models {sorted(set(chosen) - known)}; suite {suite.name!r} has {sorted(known)}"
        )
    return chosen


def checkpoint_names(entries: Sequence[str]) -> dict[str, str]:
    """Column name -> path of `--ckpt` entries `PATH` or `NAME=PATH`.

    An entry that is an existing file is a path even when it holds `=` (Lightning's
    `epoch=0-step=2.ckpt`), and so is one whose part before the first `=` is not a plain name (it holds
    a path separator). A path column is named by its file stem when it is the only entry, else by the
    whole path.
    """
    named = {}
    for entry in map(str, entries):
        name, sep, path = entry.partition("=")
        if Path(entry).is_file() or not sep or "/" in name or os.sep in name:
            name, path = (Path(entry).stem if len(entries) == 1 else entry), entry
        elif not name or not path:
            raise ValueError(f"--ckpt {entry!r}: expected PATH or NAME=PATH")
        elif not Path(path).is_file():
            raise FileNotFoundError(
                f"--ckpt {entry!r}: no such checkpoint file, and read as NAME=PATH its path {path!r} does "
                "not exist either; pass the path of a checkpoint file"
            )
        if name in named or name in BASELINES:
            raise ValueError(f"--ckpt {entry!r}: column name {name!r} is already taken; use NAME=PATH")
        named[name] = path
    return named


def writable_dir(path: Path) -> Path:
    """`path`, created if needed, after checking that a file can be written in it (before any work).

    Raises ReportWriteError naming `path` otherwise.
    """
    try:
        ensure_writable_folder(path)
    except OSError as error:
        raise ReportWriteError(
            f"--out_dir {str(path)!r} is not a writable folder ({error}); pass one where the report can go"
        ) from error
    return path


def write_outputs(
    results: list[TaskResult],
    out: Path,
    title: str,
    table: str,
    embeddings: dict[str, Embeddings],
    splits: Callable[[], dict[str, Path]] = dict,
) -> dict[str, Path]:
    """Write the report files (`suite.md`: the domain table `table`), one JSON per task, the embedding plots
    and what `splits()` writes (the library-made splits' list files); ReportWriteError says where writing
    failed."""
    try:
        files = write_report(results, out, title=title)
        files |= splits()
        files["suite"] = out / "suite.md"
        files["suite"].write_text(f"# {title}\n\n{table}", encoding="utf-8")
        files |= write_task_files(results, out)
        for stem, (test, classes) in embeddings.items():
            files[stem] = plot_embeddings(test.features, test.labels, classes, out / f"{stem}.png")
    except OSError as error:
        raise ReportWriteError(
            f"the evaluation finished but writing its report to {str(out)!r} failed: {error}. The table "
            "printed above is the result; pass a writable --out_dir to keep the files"
        ) from error
    return files


def evaluate(
    suite: str = "hares-mini",
    ckpt: list[str] | None = None,
    baselines: list[str] | None = None,
    tasks: list[str] | None = None,
    encoder: nn.Module = lazy_instance(ByolAEncoder, d=256, channels=16),
    probe: ProbeConfig | None = None,
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
    protocol: str = "cached",
    paper_models: list[str] | None = None,
    svm: bool = False,
) -> list[TaskResult]:
    """Evaluate checkpoints and baselines on a suite; print and write the per-task table.

    Args:
        suite: suite name (`hares-mini`).
        ckpt: checkpoints of fitted methods (`last.ckpt` of a `fit` run); each becomes a column, named
            by a `NAME=PATH` entry, else by the file name (one checkpoint) or the path. An existing
            file is a path even with `=` in its name (`epoch=0-step=2.ckpt`).
        baselines: any of `random-init` and `supervised` (both by default; none: `[]`, on the command
            line `--baselines` alone). They use
            the encoder architecture of the first checkpoint, or `encoder` when none is given.
        tasks: subset of the suite's tasks (all by default).
        encoder: encoder for the baselines when no checkpoint is given.
        probe: linear-probe settings (None: the suite's protocol, `Suite.probe`, else `ProbeConfig()`:
            Adam, warmup + cosine, selection on valid).
        supervised_steps: training steps of the supervised baseline per task.
        supervised_optim: its optimizer and schedule.
        out_dir: where results.{md,csv,json,png} and t-SNE plots go (checked for writing first; the
            table is printed before they are written).
        data_root: data root of the suite (default `$SSL_LIGHTNING_DATA` or `~/.cache/ssl_lightning`).
        device: `auto`, `cpu` or `cuda`.
        seed: seeds the baselines' initialisation and the probes.
        plot: write t-SNE plots of the test embeddings of each probed model.
        protocol: `cached` (features once per split, heads in seconds) or `random_crop` (the head trains on
            the frozen features of fresh random training crops at every step, as the paper does).
        svm: score the tasks the paper scores with a linear SVM (HARES: ESC-50) that way, on cached
            features, C picked on the first fold's valid split from the paper's grid.
        paper_models: published models shown beside the results (the suite's default selection when None;
            HARES: any column of the paper's Table 4, see `ssl_lightning.eval.hares.PAPER_MODELS`).
    """
    L.seed_everything(seed, verbose=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)  # a trainer per task: keep output short
    baselines = list(BASELINES) if baselines is None else baselines
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(
            f"unknown baselines {unknown}; choose from {list(BASELINES)} (none: `--baselines` alone)"
        )
    methods = {name: load_method(path) for name, path in checkpoint_names(ckpt or []).items()}
    if methods:
        encoder = next(iter(methods.values())).encoder
    the_suite = get_suite(suite, data_root)
    paper_models = check_paper_models(the_suite, paper_models)
    runner = SuiteRunner(
        the_suite, tasks, probe, data_root, batch_size, num_workers, device, progress, protocol, svm
    )
    out = writable_dir(Path(out_dir))
    embeddings: dict[str, Embeddings] | None = {} if plot else None
    results: list[TaskResult] = []
    if "random-init" in baselines:
        results += runner.probe_model(
            "random-init", FrozenEncoder(random_init_like(encoder, seed)), embeddings
        )
    if "supervised" in baselines:
        results += runner.supervised("supervised", encoder, supervised_steps, supervised_optim)
    for name, method in methods.items():
        results += runner.probe_model(name, method, embeddings)
    table = format_suite_table(results, the_suite, paper_models)
    print(table, flush=True)  # first: a report that cannot be written loses nothing
    title = f"{suite} linear-probe evaluation ({protocol} features)"
    files = write_outputs(
        results, out, title, table, embeddings or {}, lambda: runner.write_splits(out / "splits")
    )
    shown = [str(path) for key, path in files.items() if not key.startswith(("task_", "split_"))]
    print(f"report: {', '.join(shown)}, and one JSON per task in {out / 'tasks'}", flush=True)
    if any(key.startswith("split_") for key in files):
        print(f"the splits the library made (not the paper's) are recorded in {out / 'splits'}", flush=True)
    return results


def build_parser() -> ArgumentParser:
    """The parser of `evaluate`'s arguments; `--ckpt`, `--tasks` and `--baselines` take several values
    and may repeat (`--ckpt a.ckpt b.ckpt`, `--ckpt a.ckpt --ckpt b.ckpt`; jsonargparse's `--ckpt+` too)."""
    parser = ArgumentParser(prog="ssl-lightning evaluate", description=evaluate.__doc__.splitlines()[0])
    parser.add_argument("--config", action="config", help="YAML file with any of these arguments")
    parser.add_function_arguments(evaluate, skip=set(LIST_ARGUMENTS))
    helps = {param.arg_name: param.description for param in docstring_parser.parse(evaluate.__doc__).params}
    for name, nargs in LIST_ARGUMENTS.items():
        parser.add_argument(
            f"--{name}", f"--{name}+", type=str, nargs=nargs, action="extend", default=None, help=helps[name]
        )
    return parser


def main(args: Sequence[str] | None = None) -> None:
    """`ssl-lightning evaluate ...`: parse arguments (and `--config` files) and run `evaluate`.

    Bad names, paths and checkpoints are usage errors (exit 2, no traceback); a report that cannot be
    written after the table is printed exits 1 saying where.
    """
    parser = build_parser()
    cfg = parser.parse_args(args)
    try:
        cfg = parser.instantiate(cfg)
        evaluate(**{name: cfg[name] for name in inspect.signature(evaluate).parameters})
    except ReportWriteError as err:
        print(f"ssl-lightning evaluate: error: {err}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, FileNotFoundError, CheckpointReadError) as err:
        parser.error(str(err))
