"""`ssl-lightning beats-loop`: run the BEATs iterations in order into one run directory.

    ssl-lightning beats-loop --run-dir runs/beats --until iter2
    ssl-lightning beats-loop --run-dir runs/beats --until iter3plus     # fine-tunes iter2 on the way
    ssl-lightning beats-loop --run-dir runs/beats --until iter3plus --finetuned-teacher BEATs_iter2_ft.pt
    ssl-lightning beats-loop --run-dir /tmp/b --until iter2 --config recipes/overlays/cpu_smoke.yaml \
        --stage-config 'iter*=recipes/overlays/tiny/BEATsEncoder.yaml' \
        --stage-config 'tokenizer_*=recipes/overlays/tiny/SelfDistilledTokenizerTraining.yaml'

Stage `<stage>` fits `recipes/beats_<stage>.yaml` (then every `--config`, then the `--stage-config`
files whose pattern matches the stage) and writes `<run_dir>/<stage>/checkpoints/last.ckpt`, logs under
`<run_dir>/<stage>/`, and a `<run_dir>/<stage>/DONE` marker once the fit returns. Its input, the previous
stage's `last.ckpt`, replaces the recipe's `tokenizer_checkpoint` (masked audio modelling),
`teacher_checkpoint` (tokenizer training) or `pretrained_checkpoint` (fine-tuning), and any `tokenizer` /
`teacher` module an overlay sets. The iteration 3+ tokenizer distils from BEATs_iter2 fine-tuned on labels:
the `iter2_finetuned` stage writes it, unless `--finetuned-teacher` gives one (e.g. an official
fine-tuned file), in which case that stage is left out. On a restart a stage with DONE and a readable
`last.ckpt` is skipped, one with a readable checkpoint but no DONE is resumed from it
(`orchestration/stages.py`).
"""

from __future__ import annotations

import argparse
import fnmatch
from collections.abc import Sequence
from pathlib import Path

from ssl_lightning.orchestration.stages import Stage, StageResult, last_checkpoint, run_stages

STAGES = (
    "iter1",
    "tokenizer_iter2",
    "iter2",
    "tokenizer_iter3",
    "iter3",
    "iter2_finetuned",
    "tokenizer_iter3plus",
    "iter3plus",
)
FINETUNE_STAGE = "iter2_finetuned"
FINETUNED_STAGE = "tokenizer_iter3plus"
INPUT_OF = {FINETUNE_STAGE: "iter2", FINETUNED_STAGE: FINETUNE_STAGE}
"""Stages whose input is not the stage just before them."""


def _input_key(stage: str) -> str:
    """The model argument a stage's input checkpoint goes to ("teacher", "tokenizer" or "pretrained")."""
    if stage == FINETUNE_STAGE:
        return "pretrained"
    return "teacher" if stage.startswith("tokenizer_") else "tokenizer"


def _producer(stage: str) -> str | None:
    """The stage whose `last.ckpt` `stage` reads (None for iter1)."""
    index = STAGES.index(stage)
    return INPUT_OF.get(stage, STAGES[index - 1] if index else None)


def _input_args(stage: str, source: Path) -> tuple[str, ...]:
    """Overrides that make `stage` read `source` (and drop any module an overlay set in its place)."""
    key = _input_key(stage)
    drop = () if key == "pretrained" else (f"--model.init_args.{key}", "null")
    return (*drop, f"--model.init_args.{key}_checkpoint", str(source))


def _parse_stage_configs(items: Sequence[str], stages: Sequence[str]) -> list[tuple[str, Path]]:
    """`PATTERN=PATH` strings -> (pattern, path) pairs; ValueError for a bad item or an unused pattern."""
    pairs = []
    for item in items:
        pattern, sep, path = item.partition("=")
        if not sep or not pattern or not path:
            raise ValueError(f"--stage-config {item!r}: expected STAGE_PATTERN=PATH, e.g. 'iter*=tiny.yaml'")
        if not fnmatch.filter(stages, pattern):
            raise ValueError(
                f"--stage-config {item!r}: pattern {pattern!r} matches none of the stages {list(stages)}"
            )
        pairs.append((pattern, Path(path)))
    return pairs


def _select_stages(start: str, until: str, finetuned_teacher: Path | None) -> list[str]:
    """The stages from `start` to `until`, without iter2_finetuned when a fine-tuned teacher is given."""
    first, last = STAGES.index(start), STAGES.index(until)
    if first > last:
        raise ValueError(f"--from {start} comes after --until {until}; the order is {' -> '.join(STAGES)}")
    stages = list(STAGES[first : last + 1])
    if finetuned_teacher is not None:
        if FINETUNED_STAGE not in stages:
            raise ValueError(f"--finetuned-teacher is read by stage {FINETUNED_STAGE} only, which is not run")
        stages = [stage for stage in stages if stage != FINETUNE_STAGE]
    return stages


def plan_stages(
    run_dir: Path,
    until: str,
    start: str = STAGES[0],
    configs: Sequence[Path] = (),
    stage_configs: Sequence[tuple[str, Path]] = (),
    recipes_dir: Path = Path("recipes"),
    finetuned_teacher: Path | None = None,
) -> list[Stage]:
    """The BEATs stages from `start` to `until`, each with its recipe, configs and input checkpoint."""
    plan = []
    for name in _select_stages(start, until, finetuned_teacher):
        producer = _producer(name)
        if name == FINETUNED_STAGE and finetuned_teacher is not None:
            source, hint = finetuned_teacher, "pass an existing file as --finetuned-teacher"
        elif producer is not None:
            source = last_checkpoint(run_dir, producer)
            command = f"ssl-lightning beats-loop --run-dir {run_dir} --until {producer}"
            hint = f"run stage {producer} first ({command})"
        else:
            source, hint = None, ""
        matching = [path for pattern, path in stage_configs if fnmatch.fnmatchcase(name, pattern)]
        plan.append(
            Stage(
                name=name,
                recipe=recipes_dir / f"beats_{name}.yaml",
                configs=(*configs, *matching),
                input_checkpoint=source,
                input_args=() if source is None else _input_args(name, source),
                missing_input_hint=hint,
            )
        )
    return plan


def run_loop(run_dir: Path, until: str, **plan_kwargs) -> list[StageResult]:
    """Fit the BEATs stages up to `until` in order (see the module docstring); one result per stage.

    Raises FileNotFoundError (naming the stage to run first) when a stage's input checkpoint is missing,
    and ValueError for a bad stage range or a --finetuned-teacher no stage reads.
    """
    return run_stages(run_dir, plan_stages(run_dir, until, **plan_kwargs), tool="beats-loop")


def build_parser() -> argparse.ArgumentParser:
    """The `ssl-lightning beats-loop` argument parser."""
    parser = argparse.ArgumentParser(
        prog="ssl-lightning beats-loop",
        description="Run the BEATs iterations (iter1 -> tokenizer_iter2 -> iter2 ...) into one run directory",
    )
    parser.add_argument("--run-dir", type=Path, default=Path("runs/beats"), help="default: runs/beats")
    parser.add_argument("--until", choices=STAGES, required=True, help="last stage to run")
    parser.add_argument("--from", dest="start", choices=STAGES, default=STAGES[0], help="first stage to run")
    parser.add_argument(
        "--config", type=Path, action="append", default=[], help="extra config for every stage"
    )
    parser.add_argument(
        "--stage-config",
        action="append",
        default=[],
        metavar="PATTERN=PATH",
        help="extra config for the stages matching a glob pattern, e.g. 'tokenizer_*=tiny_tokenizer.yaml'",
    )
    parser.add_argument("--recipes-dir", type=Path, default=Path("recipes"), help="default: recipes")
    parser.add_argument(
        "--finetuned-teacher",
        type=Path,
        default=None,
        help="BEATs_iter2 fine-tuned on labels, the teacher of tokenizer_iter3plus, instead of the "
        "iter2_finetuned stage (e.g. an official fine-tuned BEATs_iter2 file)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> list[StageResult]:
    """Parse `argv` and run the loop; prints one summary line per stage."""
    args = build_parser().parse_args(argv)
    results = run_loop(
        run_dir=args.run_dir,
        until=args.until,
        start=args.start,
        configs=args.config,
        stage_configs=_parse_stage_configs(args.stage_config, STAGES),
        recipes_dir=args.recipes_dir,
        finetuned_teacher=args.finetuned_teacher,
    )
    print("beats-loop summary: " + ", ".join(f"{r.stage} {r.action} ({r.seconds:.1f} s)" for r in results))
    return results
