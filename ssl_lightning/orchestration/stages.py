"""Multi-stage runs: fit a list of recipes in order into one run directory, each stage reading the
checkpoint of the one before (BEATs' iterations today; data2vec's and DABS's stages next).

Stage `<name>` writes its logs under `<run_dir>/<name>/`, its checkpoints to
`<run_dir>/<name>/checkpoints/` (`last.ckpt` is what the next stage reads) and a `DONE` marker once its
fit returns. On a restart a stage whose `DONE` is there and whose `last.ckpt` loads is skipped; any
other stage with a readable checkpoint is resumed from it (`last.ckpt`, else the newest readable
`*.ckpt`), and a stage with none is run from the start.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ssl_lightning.checkpoint_io import is_readable_checkpoint
from ssl_lightning.orchestration.lightning_cli import run_lightning_cli, run_loggers


@dataclass(frozen=True)
class Stage:
    """One fit of a multi-stage run.

    Args:
        name: the stage's folder under the run directory.
        recipe: its YAML recipe; `configs` go after it (overlays, cluster settings).
        input_checkpoint: the checkpoint it reads (None: none), fed in by `input_args`.
        input_args: CLI overrides that point the recipe at `input_checkpoint`.
        missing_input_hint: what to run when `input_checkpoint` does not exist.
    """

    name: str
    recipe: Path
    configs: tuple[Path, ...] = ()
    input_checkpoint: Path | None = None
    input_args: tuple[str, ...] = ()
    missing_input_hint: str = ""


@dataclass(frozen=True)
class StageResult:
    """What the run did with one stage: `action` is "ran", "resumed" or "skipped"."""

    stage: str
    action: str
    seconds: float


def stage_dir(run_dir: Path, stage: str) -> Path:
    """`<run_dir>/<stage>`: the stage's logs, checkpoints and DONE marker."""
    return run_dir / stage


def last_checkpoint(run_dir: Path, stage: str) -> Path:
    """`<run_dir>/<stage>/checkpoints/last.ckpt`, the checkpoint the next stage reads."""
    return stage_dir(run_dir, stage) / "checkpoints" / "last.ckpt"


def resume_checkpoint(run_dir: Path, stage: str) -> Path | None:
    """The checkpoint to resume `stage` from: `last.ckpt` if it loads, else the newest `*.ckpt` beside it
    that loads; None when the stage has no checkpoint. RuntimeError (naming the files) when it has
    checkpoints and none of them loads."""
    last = last_checkpoint(run_dir, stage)
    found = sorted(last.parent.glob("*.ckpt"), key=lambda path: (path == last, path.stat().st_mtime))
    for path in reversed(found):
        if is_readable_checkpoint(path):
            if path != last and last in found:
                print(f"{stage}: {last} cannot be read (truncated?); resuming from {path}", flush=True)
            return path
    if found:
        raise RuntimeError(
            f"stage {stage}: none of its checkpoints can be read ({', '.join(map(str, found))}); they are "
            f"truncated or not checkpoints. Remove {stage_dir(run_dir, stage)} to run the stage again."
        )
    return None


def _location_args(out: Path) -> list[str]:
    """CLI overrides that put a stage's checkpoints and logs under `out`."""
    return [
        "--trainer.default_root_dir", str(out),
        "--trainer.logger", json.dumps(run_loggers(str(out))),
        "--checkpoint.dirpath", str(out / "checkpoints"),
        "--checkpoint.save_last", "true",
    ]  # fmt: skip


def check_stages(stages: Sequence[Stage]) -> None:
    """FileNotFoundError naming the first missing recipe or config file, before anything runs."""
    for stage in stages:
        if not stage.recipe.is_file():
            raise FileNotFoundError(f"recipe {str(stage.recipe)!r} of stage {stage.name} does not exist")
        for path in stage.configs:
            if not path.is_file():
                raise FileNotFoundError(f"config file {str(path)!r} (stage {stage.name}) does not exist")


def run_stages(run_dir: Path, stages: Sequence[Stage], tool: str = "stages") -> list[StageResult]:
    """Fit `stages` in order into `run_dir` (see the module docstring); one result per stage, one
    progress line per stage prefixed with `tool`."""
    check_stages(stages)
    results = []
    for stage in stages:
        began = time.perf_counter()
        last, done = last_checkpoint(run_dir, stage.name), stage_dir(run_dir, stage.name) / "DONE"
        if done.is_file() and is_readable_checkpoint(last):
            results.append(StageResult(stage.name, "skipped", 0.0))
            print(f"{tool}: {stage.name:<20} skipped (done: {last})", flush=True)
            continue
        source = stage.input_checkpoint
        if source is not None and not source.is_file():
            raise FileNotFoundError(
                f"stage {stage.name} needs {source}, which does not exist; {stage.missing_input_hint}"
            )
        resume = resume_checkpoint(run_dir, stage.name)
        args = ["fit", "--config", str(stage.recipe)]
        args += [item for path in stage.configs for item in ("--config", str(path))]
        args += [*_location_args(stage_dir(run_dir, stage.name)), *stage.input_args]
        if resume is not None:
            args += ["--ckpt_path", str(resume)]
        done.unlink(missing_ok=True)
        run_lightning_cli(args)
        if not last.is_file():
            raise RuntimeError(
                f"stage {stage.name} finished without writing {last}; check its checkpoint settings"
            )
        action = "ran" if resume is None else "resumed"
        done.write_text(f"{stage.name} {action}\n")
        results.append(StageResult(stage.name, action, time.perf_counter() - began))
        print(f"{tool}: {stage.name:<20} {action} in {results[-1].seconds:.1f} s", flush=True)
    return results
