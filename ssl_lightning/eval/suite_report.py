"""Suite reports: the per-task table grouped by domain, side by side with published scores, with domain
averages and the suite score (HARES: the mean over its 12 tasks; DABS: the mean over its domains,
`Suite.score_over`), and one JSON file per task.

A domain average or suite score of a model is printed only when the model ran every task of it on the
task's canonical data (the paper's splits; any data when the suite is not `canonical_only`); otherwise the
cell says so, and a footnote names the tasks. Published averages are the paper's own (`Suite.paper_scores`)
where it gives them, else the mean of its task (or domain) scores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ssl_lightning.eval.report import MISSING, TaskResult, json_default
from ssl_lightning.eval.suites import Suite

NOT_CANONICAL = "n/c"
"""The cell of an average that would include a task run off its canonical data (or a missing task)."""


def _mean(values: Sequence[float | None]) -> float | None:
    return None if not values or None in values else sum(values) / len(values)


def _cell(value: float | None, percent: bool) -> str:
    if value is None:
        return MISSING
    return f"{100 * value:.1f}" if percent else f"{value:.1f}"


def domains(suite: Suite) -> list[str]:
    """The suite's domains in the order of its tasks (HARES: environment, speech, music)."""
    return list(dict.fromkeys(task.domain for task in suite.tasks.values()))


def suite_scores(results: Sequence[TaskResult], suite: Suite) -> dict[str, dict[str, float | None]]:
    """Per model: each domain's mean and the suite score `suite.name` (mean over all its tasks, or over its
    domain means when `suite.score_over` is "domains"), as fractions; None where the model misses a task or
    ran one on non-canonical data (of a `canonical_only` suite)."""
    by_model: dict[str, dict[str, TaskResult]] = {}
    for r in results:
        by_model.setdefault(r.model, {})[r.task] = r
    scores = {}
    for model, tasks in by_model.items():

        def value(name: str, tasks: dict[str, TaskResult] = tasks) -> float | None:
            r = tasks.get(name)
            off = suite.canonical_only and r is not None and r.extra.get("canonical") is False
            return None if r is None or off else r.value

        row = {
            domain: _mean([value(t.name) for t in suite.tasks.values() if t.domain == domain])
            for domain in domains(suite)
        }
        over_domains = suite.score_over == "domains"
        row[suite.name] = _mean(
            [row[d] for d in domains(suite)] if over_domains else list(map(value, suite.tasks))
        )
        scores[model] = row
    return scores


def paper_score(suite: Suite, key: str, model: str) -> float | None:
    """Published score (percent) of `model` for domain or suite `key`: the paper's own number
    (`suite.paper_scores`), else the mean of its task scores (a domain) or of its task or domain scores
    (the suite, by `suite.score_over`); None when one is missing."""
    published = suite.paper_scores.get(key, {}).get(model)
    if published is not None:
        return published
    if key != suite.name:
        return _mean([t.paper.get(model) for t in suite.tasks.values() if t.domain == key])
    if suite.score_over == "domains":
        return _mean([paper_score(suite, d, model) for d in domains(suite)])
    return _mean([t.paper.get(model) for t in suite.tasks.values()])


def format_suite_table(results: Sequence[TaskResult], suite: Suite, paper_models: Sequence[str] = ()) -> str:
    """Markdown table: tasks grouped by domain (the tasks of `results`, in suite order), one column per
    evaluated model, then one per published model of `paper_models` (the tasks' `paper` scores); a row per
    domain average and the suite score (see the module docstring)."""
    models = list(dict.fromkeys(r.model for r in results))
    values = {(r.task, r.model): r for r in results}
    ran = [t for t in suite.tasks.values() if any(r.task == t.name for r in results)]
    scores = suite_scores(results, suite)
    header = ["task", "metric", *models, *(f"paper: {m}" for m in paper_models)]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":--", ":--", *["--:"] * (len(header) - 2)]) + "|",
    ]

    def average_row(label: str, key: str) -> str:
        ours = [NOT_CANONICAL if scores[m][key] is None else _cell(scores[m][key], True) for m in models]
        paper = [_cell(paper_score(suite, key, p), False) for p in paper_models]
        return "| " + " | ".join([f"**{label}**", "", *ours, *paper]) + " |"

    for domain in domains(suite):
        tasks = [t for t in ran if t.domain == domain]
        if not tasks:
            continue
        lines.append("| " + " | ".join([f"*{domain}*", "", *[""] * (len(header) - 2)]) + " |")
        for t in tasks:
            ours = []
            for m in models:
                r = values.get((t.name, m))
                off = suite.canonical_only and r is not None and r.extra.get("canonical") is False
                mark = "†" if off else ""
                ours.append(_cell(None if r is None else r.value, True) + mark)
            paper = [_cell(t.paper.get(p), False) for p in paper_models]
            lines.append("| " + " | ".join([t.name, t.metric, *ours, *paper]) + " |")
        lines.append(average_row(f"{domain} avg.", domain))
    lines.append(average_row(suite.name.upper() if suite.name == "hares" else suite.name, suite.name))
    off = sorted({r.task for r in results if suite.canonical_only and r.extra.get("canonical") is False})
    notes = (
        [
            f"† not the paper's split ({', '.join(off)}); see each task's `split_note` in tasks/<task>.json.",
        ]
        if off
        else []
    )
    rule = "ran on its canonical data" if suite.canonical_only else "ran"
    notes.append(f"{NOT_CANONICAL}: an average is given only when every task of it {rule}.")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def write_task_files(results: Sequence[TaskResult], out_dir: Path) -> dict[str, Path]:
    """`<out_dir>/tasks/<task>.json` per task: every model's result with its provenance (`extra`)."""
    folder = Path(out_dir) / "tasks"
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for task in dict.fromkeys(r.task for r in results):
        records = [asdict(r) for r in results if r.task == task]
        paths[f"task_{task}"] = folder / f"{task}.json"
        paths[f"task_{task}"].write_text(
            json.dumps({"task": task, "results": records}, indent=2, default=json_default), encoding="utf-8"
        )
    return paths
