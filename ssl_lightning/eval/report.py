"""Evaluation reports (markdown table, CSV, JSON, bar chart) and embedding scatter plots.

Figures are drawn on `matplotlib.figure.Figure` objects (Agg canvas) without pyplot, so nothing
changes the process-wide backend or leaks open figures.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

MISSING = "–"


@dataclass
class TaskResult:
    """One model's score on one task.

    Args:
        suite, task, model: names (e.g. "hares-mini", "esc50-mini", "random-init").
        metric: "accuracy" or "mAP".
        value: the metric as a fraction in [0, 1] (reports print percentages).
        num_train, num_test: clips in the train and test splits.
        seconds: wall time of the evaluation (feature extraction + probe).
        extra: anything else worth keeping (JSON-serialisable, tensors and numpy scalars accepted).
    """

    suite: str
    task: str
    model: str
    metric: str
    value: float
    num_train: int
    num_test: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Grid:
    """Results arranged as rows (tasks, in first-seen order) by columns (models, in first-seen order)."""

    rows: list[tuple[str, str]]  # (row label, metric)
    models: list[str]
    values: dict[tuple[str, str], float]  # (row label, model) -> value in [0, 1]

    def means(self) -> dict[str, float | None]:
        """Per-model mean over all rows, None for a model missing some task."""
        out: dict[str, float | None] = {}
        for model in self.models:
            column = [self.values.get((label, model)) for label, _ in self.rows]
            out[model] = None if None in column else sum(column) / len(column)
        return out


def _grid(results: Sequence[TaskResult]) -> _Grid:
    if not results:
        raise ValueError("no results to report")
    several_suites = len({r.suite for r in results}) > 1
    rows: dict[str, str] = {}
    models: dict[str, None] = {}
    values: dict[tuple[str, str], float] = {}
    for r in results:
        label = f"{r.suite}/{r.task}" if several_suites else r.task
        if rows.setdefault(label, r.metric) != r.metric:
            raise ValueError(f"task {label!r} is reported with metrics {rows[label]!r} and {r.metric!r}")
        if (label, r.model) in values:
            raise ValueError(f"two results for task {label!r} and model {r.model!r}; keep one per pair")
        if not math.isfinite(r.value):
            raise ValueError(f"result for task {label!r}, model {r.model!r} is not finite: {r.value}")
        models.setdefault(r.model, None)
        values[label, r.model] = r.value
    return _Grid(list(rows.items()), list(models), values)


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{100 * value:.1f}"


def format_table(results: Sequence[TaskResult]) -> str:
    """Markdown table: one row per task, one column per model, values in % with 1 decimal, then a
    mean row (the mean of a model that misses a task is left blank as "–")."""
    grid = _grid(results)
    lines = [
        "| " + " | ".join(["task", "metric", *grid.models]) + " |",
        "|" + "|".join([":--", ":--", *["--:"] * len(grid.models)]) + "|",
    ]
    for label, metric in grid.rows:
        cells = [_percent(grid.values.get((label, model))) for model in grid.models]
        lines.append("| " + " | ".join([label, metric, *cells]) + " |")
    means = grid.means()
    lines.append("| " + " | ".join(["mean", "", *[_percent(means[m]) for m in grid.models]]) + " |")
    return "\n".join(lines) + "\n"


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)` for report values: tensors and numpy values as lists, paths as strings."""
    if isinstance(value, Tensor | np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(
        f"TaskResult.extra holds a {type(value).__name__}, which JSON cannot store; convert it first"
    )


def _plot_results(grid: _Grid, path: Path, title: str) -> None:
    """Grouped bar chart: one group per task (plus the mean), one bar per model, value labels on top."""
    means = grid.means()
    groups = [f"{label}\n({metric})" for label, metric in grid.rows]
    show_mean = len(grid.rows) > 1 and all(v is not None for v in means.values())
    if show_mean:
        groups.append("mean")
    num_models = len(grid.models)
    width = 0.8 / num_models
    x = np.arange(len(groups))
    fig = Figure(figsize=(max(6.0, 2.5 + len(groups) * (0.4 + 0.45 * num_models)), 4.8), layout="constrained")
    ax = fig.add_subplot()
    for i, model in enumerate(grid.models):
        heights = [100 * grid.values.get((label, model), math.nan) for label, _ in grid.rows]
        if show_mean:
            heights.append(100 * means[model])
        bars = ax.bar(x + (i - (num_models - 1) / 2) * width, heights, width, label=model)
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2, rotation=90 if num_models > 3 else 0)
    if show_mean:
        ax.axvline(len(grid.rows) - 0.5, color="0.6", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_xlabel("task (metric)")
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 110)
    ax.set_yticks(range(0, 101, 20))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(title="model", loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(title or "probe results")
    fig.savefig(path, dpi=120)


def write_report(results: Sequence[TaskResult], out_dir: Path, title: str = "") -> dict[str, Path]:
    """Write `results.md`, `results.csv`, `results.json` and `results.png` into `out_dir`.

    Returns:
        {"md": ..., "csv": ..., "json": ..., "png": ...} paths.
    """
    grid = _grid(results)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {kind: out_dir / f"results.{kind}" for kind in ("md", "csv", "json", "png")}
    heading = f"# {title}\n\n" if title else ""
    paths["md"].write_text(heading + format_table(results), encoding="utf-8")
    records = [asdict(r) for r in results]
    paths["json"].write_text(
        json.dumps({"title": title, "results": records}, indent=2, default=json_default), encoding="utf-8"
    )
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[fld.name for fld in fields(TaskResult)])
        writer.writeheader()
        for record in records:
            writer.writerow({**record, "extra": json.dumps(record["extra"], default=json_default)})
    _plot_results(grid, paths["png"], title)
    return paths


def plot_embeddings(
    features: Tensor,
    labels: Tensor,
    class_names: Sequence[str],
    path: Path,
    method: str = "tsne",
    max_points: int = 2000,
    seed: int = 0,
) -> Path:
    """2-D map of [N, D] embeddings coloured by their [N] class ids, saved as a PNG at `path`.

    Args:
        method: "tsne" (scikit-learn t-SNE, PCA initialisation; 10-30 s for 2000 points on 2 busy cores)
            or "pca".
        max_points: a random subset of this many points (seeded) is drawn when N is larger.
    """
    if features.ndim != 2 or labels.shape != features.shape[:1] or labels.is_floating_point():
        raise ValueError(
            f"plot_embeddings needs [N, D] features and [N] integer class ids, got "
            f"{tuple(features.shape)} and {labels.dtype} {tuple(labels.shape)} "
            "(multi-label targets cannot colour a scatter plot)"
        )
    if method not in ("tsne", "pca"):
        raise ValueError(f"unknown method {method!r}; choose 'tsne' or 'pca'")
    if len(labels) < 3:
        raise ValueError(f"plot_embeddings needs at least 3 points, got {len(labels)}")
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise ValueError(
            f"labels span [{labels.min()}, {labels.max()}] but {len(class_names)} class names were given"
        )
    generator = torch.Generator().manual_seed(seed)
    keep = torch.randperm(len(labels), generator=generator)[:max_points]
    x = features.cpu()[keep].double().numpy()
    y = labels.cpu()[keep].numpy()
    points = _project(x, method, seed)

    present = np.unique(y)
    fig = Figure(figsize=(7.5 if len(present) <= 12 else 9.5, 6), layout="constrained")
    ax = fig.add_subplot()
    palette = _palette(len(present))
    for color, k in zip(palette, present, strict=True):
        sel = y == k
        ax.scatter(
            points[sel, 0], points[sel, 1], s=10, alpha=0.75, color=color, label=class_names[k], linewidths=0
        )
    name = {"tsne": "t-SNE", "pca": "PCA"}[method]
    ax.set_xlabel(f"{name} 1")
    ax.set_ylabel(f"{name} 2")
    ax.set_title(f"{name} of {len(y)} embeddings, {len(present)} classes")
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        fontsize=8,
        markerscale=1.5,
        frameon=False,
        ncols=1 if len(present) <= 25 else 2,
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _project(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    """[N, D] -> [N, 2] with PCA, or t-SNE after a PCA to 50 dimensions (scikit-learn's advice for
    wide features: it makes the neighbour search cheap and removes noise).

    Runs on one thread: t-SNE's OpenMP threads slow it down 5-20x on a machine whose cores are
    busy (measured on 2 shared cores), and one thread handles a few thousand points in seconds.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if method == "pca":
            return PCA(n_components=2, random_state=seed).fit_transform(x)
        if x.shape[1] > 50:
            x = PCA(n_components=min(50, len(x)), random_state=seed).fit_transform(x)
        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed).fit_transform(x)


def _palette(n: int) -> list:
    """n distinguishable colours: tab10, then tab20 + tab20b + tab20c (60), then a rainbow map."""
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 60:
        return [colormaps[name](i) for name in ("tab20", "tab20b", "tab20c") for i in range(20)][:n]
    return [colormaps["turbo"](i / (n - 1)) for i in range(n)]
