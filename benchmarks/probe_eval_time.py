"""Wall-clock time of a hares-mini linear-probe evaluation of one small encoder (target: <= 5 min, 2 cores).

    python benchmarks/probe_eval_time.py   # random-init BYOL-A CNN, `evaluate` default (d=256, 16 ch)
    python benchmarks/probe_eval_time.py --threads 2 --out probe_eval_time.md

The data set is generated first (timed separately), so the figure is the evaluation alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from ssl_lightning.data.embedded.hares_mini import TASKS, ensure_hares_mini
from ssl_lightning.eval.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="markdown file for the measured figures")
    parser.add_argument("--out-dir", default="runs/bench_probe_eval")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    ensure_hares_mini()
    build_s = time.perf_counter() - start

    start = time.perf_counter()
    results = evaluate(
        baselines=["random-init"], out_dir=args.out_dir, plot=False, progress=False, device="cpu"
    )
    eval_s = time.perf_counter() - start

    lines = [
        f"# hares-mini linear-probe evaluation time ({args.threads} threads, CPU)",
        "",
        f"- data generation (skipped when cached): {build_s:.1f} s",
        f"- evaluation of one encoder over {len(TASKS)} tasks: {eval_s:.1f} s (target <= 300 s)",
        "",
        "| task | metric | value | seconds |",
        "|---|---|---|---|",
        *(f"| {r.task} | {r.metric} | {r.value:.3f} | {r.seconds:.1f} |" for r in results),
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
