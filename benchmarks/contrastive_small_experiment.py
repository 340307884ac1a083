"""Small CPU experiment of the contrastive family: linear-probe accuracy against the encoder at random init.

Images (`DigitsDataModule`: scikit-learn's 8x8 digits upsampled to `--image-size`): SimCLR, SimCLR + RQ
(`ImageViews(rq_bins=...)`) and CQ-C SimCLR (`ContrastiveQuantConfig("cq_c", ...)`) with a small CIFAR
ResNet, each trained for `--image-steps` optimizer steps, then a linear probe on frozen features of the
train split (selected on valid, scored on test) with the encoder at full precision and fake-quantized
to 4 bits (`eval/quantized.py: linear_eval`).

Audio (hares-mini): BYOL with BYOL-A views (`ByolAViews()`) and BYOL-A + RQ (`ByolAViews(rq_bins=5)`)
on the unlabeled pool (0.95 s crops, as the official BYOL-A), a small `ByolAEncoder`, trained for
`--audio-steps` steps, then the hares-mini linear probe (`SuiteRunner.probe_model`) on `--tasks`.

Every trained model and its random-init baseline start from the same weights (the encoder is built
right after `lightning.seed_everything(--seed)`); training runs through a Lightning `Trainer` with
`deterministic=True`, so a rerun with the same flags gives the same numbers. `--threads 1` is the
default: on a CPU shared with other jobs two OpenMP threads were 2-4x slower per step than one.
At the defaults the whole run took 4.5-6 minutes on 2 shared cores; hares-mini is generated first when
it is not cached (timed separately, not part of that figure).

    python benchmarks/contrastive_small_experiment.py --out contrastive_small_experiment.md
    python benchmarks/contrastive_small_experiment.py --image-steps 5 --audio-steps 5 --tasks env_events
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from common import report, resolve_device
from lightning.fabric.utilities.warnings import PossibleUserWarning

from ssl_lightning.augment import ByolAViews, ImageViews
from ssl_lightning.backbones import ByolAEncoder, CifarResNet
from ssl_lightning.data import DigitsDataModule, HaresMiniDataModule
from ssl_lightning.data.embedded.hares_mini import TASKS, ensure_hares_mini
from ssl_lightning.eval.evaluate import SuiteRunner
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.eval.quantized import linear_eval
from ssl_lightning.eval.report import TaskResult
from ssl_lightning.eval.suites import get_suite
from ssl_lightning.methods import BYOL, ContrastiveQuantConfig, FrozenEncoder, SimCLR, SSLMethod
from ssl_lightning.nn.optim import OptimizerConfig

RANDOM_INIT = "random-init"
PRECISIONS: tuple[int | None, ...] = (None, 4)
POOL_CROP_SECONDS = 0.95
"""BYOL-A's training crop: 0.95 s at hop 160 is its 96-frame segment, shared by both views."""

Builder = Callable[[], SSLMethod]
Row = dict[str, Any]


def parse_args() -> argparse.Namespace:
    """The experiment's options (sizes, steps, learning rates, tasks, seed, threads, output)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--image-steps", type=int, default=150, help="optimizer steps per image method")
    parser.add_argument("--image-batch", type=int, default=128, help="images per SimCLR batch")
    parser.add_argument("--image-size", type=int, default=16, help="side of the upsampled digits")
    parser.add_argument("--image-lr", type=float, default=2e-3, help="AdamW peak learning rate (images)")
    parser.add_argument("--depth", type=int, default=8, help="CIFAR ResNet depth (6n + 2)")
    parser.add_argument("--width", type=int, default=16, help="CIFAR ResNet stem width (embed dim 4x)")
    parser.add_argument("--temperature", type=float, default=0.2, help="NT-Xent temperature")
    parser.add_argument("--image-rq-bins", type=int, default=8, help="RQ bins per RGB channel")
    parser.add_argument("--precision-set", default="6-16", help="CQ-C precision set (paper default)")
    parser.add_argument("--audio-steps", type=int, default=150, help="optimizer steps per audio method")
    parser.add_argument("--audio-batch", type=int, default=32, help="pool crops per BYOL batch")
    parser.add_argument("--audio-lr", type=float, default=1e-3, help="AdamW peak learning rate (audio)")
    parser.add_argument("--base-tau", type=float, default=0.95, help="BYOL EMA decay at step 0 (to 1)")
    parser.add_argument("--audio-rq-bins", type=int, default=5, help="RQ bins per mel bin (RQ paper: 5)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--data-root", default=None, help="hares-mini root (default $SSL_LIGHTNING_DATA)")
    parser.add_argument("--seed", type=int, default=0, help="seeds weights, data order, views and probes")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    return parser.parse_args()


def fit(method: SSLMethod, datamodule: L.LightningDataModule, steps: int, device: torch.device) -> float:
    """Train `method` for `steps` optimizer steps (no validation, logger or checkpoints); wall seconds."""
    if steps == 0:
        return 0.0
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_steps=steps,
        deterministic=True,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(method, datamodule=datamodule)
    return time.perf_counter() - start


def image_builders(args: argparse.Namespace) -> dict[str, Builder]:
    """Random init and the three SimCLR variants, all on a `CifarResNet(depth, width)`."""
    optim = OptimizerConfig(name="adamw", lr=args.image_lr, weight_decay=1e-4, warmup_steps=0.1)

    def simclr(views: ImageViews, quant: ContrastiveQuantConfig | None = None) -> SimCLR:
        encoder = CifarResNet(depth=args.depth, width=args.width)
        return SimCLR(
            encoder,
            views,
            projection_dim=64,
            hidden_dim=256,
            temperature=args.temperature,
            quant=quant,
            optim=optim,
        )

    cq_c = ContrastiveQuantConfig("cq_c", precision_set=args.precision_set, seed=args.seed)
    return {
        RANDOM_INIT: lambda: FrozenEncoder(CifarResNet(depth=args.depth, width=args.width)),
        "simclr": lambda: simclr(ImageViews()),
        "simclr_rq": lambda: simclr(ImageViews(rq_bins=args.image_rq_bins)),
        "cq_c": lambda: simclr(ImageViews(), cq_c),
    }


def audio_builders(args: argparse.Namespace) -> dict[str, Builder]:
    """Random init, BYOL-A and BYOL-A + RQ, all on a `ByolAEncoder(d=256, channels=16)`."""
    optim = OptimizerConfig(name="adamw", lr=args.audio_lr, weight_decay=1e-4, warmup_steps=0.1)

    def byol(rq_bins: int | None) -> BYOL:
        encoder = ByolAEncoder(d=256, channels=16)
        return BYOL(
            encoder,
            ByolAViews(rq_bins=rq_bins),
            projection_dim=128,
            hidden_dim=512,
            predictor_hidden_dim=512,
            base_tau=args.base_tau,
            optim=optim,
        )

    return {
        RANDOM_INIT: lambda: FrozenEncoder(ByolAEncoder(d=256, channels=16)),
        "byol_a": lambda: byol(None),
        "byol_a_rq": lambda: byol(args.audio_rq_bins),
    }


def run_models(
    builders: dict[str, Builder],
    datamodule: L.LightningDataModule,
    steps: int,
    probe: Callable[[str, SSLMethod], list[TaskResult]],
    seed: int,
    device: torch.device,
) -> list[Row]:
    """Seed, build, train (all but random init) and probe every model: rows
    `{"model", "train_s", "eval_s", "results": [TaskResult, ...]}`."""
    rows = []
    for name, build in builders.items():
        L.seed_everything(seed, verbose=False)
        method = build()
        train_s = 0.0 if name == RANDOM_INIT else fit(method, datamodule, steps, device)
        start = time.perf_counter()
        results = probe(name, method)
        rows.append(
            {"model": name, "train_s": train_s, "eval_s": time.perf_counter() - start, "results": results}
        )
        print(f"{name}: trained {train_s:.0f} s, probed {rows[-1]['eval_s']:.0f} s", flush=True)
    return rows


def markdown_table(rows: Sequence[Row], column: Callable[[TaskResult], str], mean: bool) -> list[str]:
    """Rows = models; one column per `column(result)` (in %), their mean when `mean`, train and probe
    seconds."""
    columns = list(dict.fromkeys(column(r) for r in rows[0]["results"])) + (["mean"] if mean else [])
    lines = [
        "| model | " + " | ".join(columns) + " | train s | probe s |",
        "|:--|" + "--:|" * (len(columns) + 2),
    ]
    for row in rows:
        values = {column(r): 100 * r.value for r in row["results"]}
        if mean:
            values["mean"] = sum(values.values()) / len(values)
        cells = [f"{values[c]:.1f}" for c in columns] + [f"{row['train_s']:.0f}", f"{row['eval_s']:.0f}"]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return lines


def as_json(rows: Sequence[Row]) -> list[Row]:
    """The rows with their `TaskResult`s as plain dicts."""
    return [{**row, "results": [vars(r) for r in row["results"]]} for row in rows]


def main() -> None:
    """Run the image and the audio halves, print the tables and write them with `--out`."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=PossibleUserWarning)
    began = time.perf_counter()
    ensure_hares_mini(args.data_root, ["pool", *args.tasks])
    data_s = time.perf_counter() - began
    began = time.perf_counter()
    probe = ProbeConfig(seed=args.seed)

    digits = DigitsDataModule(batch_size=args.image_batch, image_size=args.image_size, seed=args.seed)
    image_rows = run_models(
        image_builders(args),
        digits,
        args.image_steps,
        lambda name, method: linear_eval(
            method, digits, PRECISIONS, probe=probe, name=name, device=str(device)
        ),
        args.seed,
        device,
    )

    pool = HaresMiniDataModule(
        "pool", args.data_root, args.audio_batch, train_seconds=POOL_CROP_SECONDS, seed=args.seed
    )
    runner = SuiteRunner(
        get_suite("hares-mini"), args.tasks, probe, args.data_root, device=str(device), progress=False
    )
    audio_rows = run_models(
        audio_builders(args), pool, args.audio_steps, runner.probe_model, args.seed, device
    )
    total_s = time.perf_counter() - began

    markdown = "\n".join(
        [
            f"# Contrastive family, small experiment ({device}, {args.threads} thread(s), seed {args.seed})",
            "",
            f"## Digits ({args.image_size}x{args.image_size}), CIFAR ResNet-{args.depth} width {args.width}, "
            f"{args.image_steps} steps x batch {args.image_batch}: linear-probe test accuracy (%)",
            "",
            *markdown_table(image_rows, lambda r: r.model, mean=False),
            "",
            f"## hares-mini, BYOL-A CNN (d=256, 16 channels), {args.audio_steps} steps x batch "
            f"{args.audio_batch} on the pool: linear-probe test score (%)",
            "",
            *markdown_table(audio_rows, lambda r: f"{r.task} ({r.metric})", mean=True),
            "",
            f"Total wall time {total_s:.0f} s, plus {data_s:.0f} s to find or generate hares-mini "
            f"(torch {torch.__version__}; shared CPU, timings are noisy). Image probe s: FP and 4-bit.",
        ]
    )
    result = {
        "args": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "torch": torch.__version__,
        "images": as_json(image_rows),
        "audio": as_json(audio_rows),
        "total_s": total_s,
        "data_s": data_s,
    }
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
