"""DABS on the embedded modalities, on the CPU: scratch (random init) against e-Mix and Randomized
Quantization on token embeddings (the RQ paper's Table 10 comparison), under DABS's linear evaluation.

For each modality (digits images, synthetic sensor windows, hares-mini spoken keywords through DABS's speech
front-end, digits with generated captions scored on DABS's mismatched-caption rule): `lightning fit` of
`recipes/dabs_<modality>_{emix,rq}.yaml` with a CPU-sized Transformer for `--steps` steps, then
`ssl-lightning evaluate --suite dabs-mini` on that modality's task with the random-init baseline (the suite's
protocol: frozen encoder, mean over all tokens, one linear layer, AdamW 1e-4 / 1e-4, 100 epochs).

    python benchmarks/dabs_small_experiment.py --run-dir runs/dabs_small --out dabs_small.md
    python benchmarks/dabs_small_experiment.py --modalities sensors --steps 100      # a quick look

Fits already finished in `--run-dir` are reused (delete the folder to retrain).
"""

import argparse
import statistics
import time
from pathlib import Path

from common import report

from ssl_lightning.cli import main as cli
from ssl_lightning.eval.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]
TASK = {
    "images": "digits",
    "sensors": "synthetic_sensors",
    "speech": "speech_keywords",
    "captioned": "mismatched_caption_digits",
}
OBJECTIVES = ("emix", "rq")
SMALL = {"dim": 128, "depth": 4, "heads": 4, "dim_head": 32, "mlp_dim": 256, "out_dim": 64}
"""The CPU-sized Transformer (DABS: 12 blocks of 256, 8 heads of 64, MLP 512, head 128)."""
BATCH = {"images": 64, "sensors": 64, "speech": 32, "captioned": 64}


def fit(modality: str, objective: str, steps: int, run_dir: Path) -> Path:
    """The last checkpoint of one pre-training run (trained unless it is there already)."""
    folder = run_dir / f"{modality}_{objective}"
    checkpoint = folder / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        encoder = [f"--model.init_args.encoder.init_args.{key}={value}" for key, value in SMALL.items()]
        cli(
            [
                "fit",
                "--config",
                str(REPO / "recipes" / f"dabs_{modality}_{objective}.yaml"),
                *encoder,
                f"--data.init_args.batch_size={BATCH[modality]}",
                f"--trainer.max_steps={steps}",
                "--trainer.val_check_interval=null",
                "--trainer.check_val_every_n_epoch=1000",
                "--trainer.limit_val_batches=0",
                f"--checkpoint.dirpath={folder / 'checkpoints'}",
                f"--trainer.default_root_dir={folder}",
            ]
        )
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-dir", type=Path, default=Path("runs/dabs_small_experiment"))
    parser.add_argument("--modalities", nargs="+", choices=list(TASK), default=list(TASK))
    parser.add_argument("--steps", type=int, default=300, help="pre-training steps per run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    table, seconds = {}, {}
    for modality in args.modalities:
        began = time.perf_counter()
        checkpoints = [
            f"{objective}={fit(modality, objective, args.steps, args.run_dir)}" for objective in OBJECTIVES
        ]
        seconds[modality] = time.perf_counter() - began
        results = evaluate(
            suite="dabs-mini",
            tasks=[TASK[modality]],
            ckpt=checkpoints,
            baselines=["random-init"],
            out_dir=str(args.run_dir / "evaluate" / modality),
            plot=False,
        )
        table[modality] = {row.model: 100 * row.value for row in results}
    models = ("random-init", *OBJECTIVES)
    means = {model: statistics.mean(scores[model] for scores in table.values()) for model in models}
    lines = [
        f"DABS on the embedded modalities, {args.steps} pre-training steps each ({SMALL}), DABS's linear "
        "evaluation (accuracy, %):",
        "",
        "| modality (task) | random init | e-Mix | RQ | pre-training, both runs |",
        "|---|---|---|---|---|",
        *(
            f"| {m} ({TASK[m]}) | {s['random-init']:.1f} | {s['emix']:.1f} | {s['rq']:.1f} | "
            f"{seconds[m]:.0f} s |"
            for m, s in table.items()
        ),
        f"| **mean** | {means['random-init']:.1f} | {means['emix']:.1f} | {means['rq']:.1f} | |",
    ]
    report("\n".join(lines), {"steps": args.steps, "table": table, "seconds": seconds}, args.out)


if __name__ == "__main__":
    main()
