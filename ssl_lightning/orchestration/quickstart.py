"""`ssl-lightning beats-quickstart`: the whole BEATs loop at tiny scale on CPU, then a probe table.

    ssl-lightning beats-quickstart                      # runs/quickstart, about 10 minutes on 2 cores

Runs `beats-loop` iter1 -> tokenizer_iter2 -> iter2 with the paper's recipes plus the overlays in
`recipes/quickstart/` (a 4-layer, 128-wide BEATs, a few hundred steps per stage on the hares-mini
pool), then probes the frozen encoders of iter1 and iter2 against the same architecture at random
initialisation on every hares-mini task, and prints and writes the table
(`<run_dir>/evaluate/results.{md,csv,json,png}`). A restart skips the stages already done.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from ssl_lightning.eval.report import TaskResult
from ssl_lightning.orchestration.beats_loop import run_loop
from ssl_lightning.orchestration.stages import last_checkpoint

REPO_RECIPES = Path(__file__).resolve().parents[2] / "recipes"
STAGES = ("iter1", "tokenizer_iter2", "iter2")


def quickstart(
    run_dir: Path = Path("runs/quickstart"),
    recipes_dir: Path = REPO_RECIPES,
    probe_tasks: Sequence[str] | None = None,
    configs: Sequence[Path] = (),
) -> list[TaskResult]:
    """Run the tiny loop into `run_dir` and probe random-init vs iter1 vs iter2; returns the table rows.
    `configs` go after the quickstart overlays of every stage (e.g. fewer steps)."""
    from ssl_lightning.eval.evaluate import evaluate

    overlays = recipes_dir / "quickstart"
    if not overlays.is_dir():
        raise FileNotFoundError(
            f"quickstart overlays not found in {overlays}; run from the repository or pass --recipes-dir"
        )
    began = time.perf_counter()
    run_loop(
        run_dir=run_dir,
        until=STAGES[-1],
        configs=[overlays / "cpu.yaml", *configs],
        stage_configs=[
            ("iter*", overlays / "iter.yaml"),
            ("iter1", overlays / "iter1.yaml"),
            ("tokenizer_*", overlays / "tokenizer.yaml"),
        ],
        recipes_dir=recipes_dir,
    )
    results = evaluate(
        ckpt=[f"{stage}={last_checkpoint(run_dir, stage)}" for stage in ("iter1", "iter2")],
        baselines=["random-init"],
        tasks=list(probe_tasks) if probe_tasks else None,
        out_dir=str(run_dir / "evaluate"),
    )
    print(f"beats-quickstart: finished in {time.perf_counter() - began:.0f} s")
    return results


def main(argv: Sequence[str] | None = None) -> list[TaskResult]:
    """Parse `argv` and run `quickstart`."""
    parser = argparse.ArgumentParser(
        prog="ssl-lightning beats-quickstart",
        description="BEATs iter1 -> tokenizer -> iter2 at tiny scale on CPU, then probes of each stage",
    )
    parser.add_argument(
        "--run-dir", type=Path, default=Path("runs/quickstart"), help="default: runs/quickstart"
    )
    parser.add_argument(
        "--recipes-dir", type=Path, default=REPO_RECIPES, help="default: the repository's recipes"
    )
    parser.add_argument("--tasks", nargs="*", default=None, help="hares-mini tasks to probe (default: all)")
    parser.add_argument(
        "--config", type=Path, action="append", default=[], help="extra config for every stage"
    )
    args = parser.parse_args(argv)
    return quickstart(args.run_dir, args.recipes_dir, args.tasks, args.config)
