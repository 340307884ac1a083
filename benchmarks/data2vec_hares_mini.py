"""data2vec speech pre-trained on the CPU against the same encoder at random initialisation, by linear
probes on every hares-mini task (the embedded suite; runs anywhere, no data).

1. `lightning fit --config recipes/data2vec_speech_hares_mini.yaml` (or the `--recipe` given: 400 steps of 16
   two-second clips of the hares-mini pool, a 4 x 128 data2vec encoder; the recipe's probe callback is left
   out here).
2. `ssl-lightning evaluate --ckpt data2vec=<its last.ckpt> --baselines random-init` on every task.

    python benchmarks/data2vec_hares_mini.py --run-dir runs/data2vec_bench --out d2v_hares_mini.md
    python benchmarks/data2vec_hares_mini.py --steps 100                    # shorter, for a quick look
    python benchmarks/data2vec_hares_mini.py --recipe recipes/data2vec2_audio_hares_mini.yaml \
        --run-dir runs/d2v_spectrogram                                       # the spectrogram-patch model
    python benchmarks/data2vec_hares_mini.py --run-dir runs/d2v_cnn -- --model.init_args.feature_grad_mult 1

Arguments after `--` go to the fit (recipe overrides).

A fit already finished in `--run-dir` is reused (delete the folder to retrain).
"""

import argparse
import statistics
import time
from pathlib import Path

from common import report

from ssl_lightning.cli import main as cli
from ssl_lightning.eval.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "data2vec_speech_hares_mini.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipe", type=Path, default=RECIPE, help="the pre-training recipe")
    parser.add_argument("--run-dir", type=Path, default=Path("runs/data2vec_hares_mini_bench"))
    parser.add_argument("--steps", type=int, default=400, help="pre-training steps")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("fit_args", nargs=argparse.REMAINDER, help="after --: overrides for the fit")
    args = parser.parse_args()
    fit_args = [arg for arg in args.fit_args if arg != "--"]
    checkpoints = args.run_dir / "checkpoints"
    began = time.perf_counter()
    if not (checkpoints / "last.ckpt").is_file():
        cli(
            [
                "fit",
                "--config",
                str(args.recipe),
                f"--trainer.max_steps={args.steps}",
                "--trainer.callbacks=[]",
                f"--checkpoint.dirpath={checkpoints}",
                f"--trainer.default_root_dir={args.run_dir}",
                f"--model.init_args.ema.anneal_end_step={args.steps}",
                *fit_args,
            ]
        )
    fit_seconds = time.perf_counter() - began
    results = evaluate(
        ckpt=[f"data2vec={checkpoints / 'last.ckpt'}"],
        baselines=["random-init"],
        out_dir=str(args.run_dir / "evaluate"),
    )
    table = {}
    for row in results:
        table.setdefault(row.task, {})[row.model] = 100 * row.value
    models = ("random-init", "data2vec")
    means = {model: statistics.mean(scores[model] for scores in table.values()) for model in models}
    lines = [
        f"data2vec on the hares-mini pool, {args.steps} steps ({args.recipe.name} {' '.join(fit_args)}; "
        f"fit {fit_seconds:.0f} s), frozen-encoder linear probes:",
        "",
        "| task | random-init | data2vec |",
        "|---|---|---|",
        *(f"| {task} | {s['random-init']:.1f} | {s['data2vec']:.1f} |" for task, s in table.items()),
        f"| **mean** | {means['random-init']:.1f} | {means['data2vec']:.1f} |",
    ]
    report(
        "\n".join(lines),
        {"steps": args.steps, "fit_seconds": fit_seconds, "table": table, "means": means},
        args.out,
    )


if __name__ == "__main__":
    main()
