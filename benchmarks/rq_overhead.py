"""Per-step time of SimCLR with Randomized Quantization views against SimCLR without, on the same batch.

The `SimCLR` method with a ResNet-18 encoder (timm, CIFAR stem by default) and a 512 -> 512 -> 128
projector, one training step (two on-device `ImageViews`, one network pass over both, NT-Xent,
backward, SGD). The two methods differ only in their views: `ImageViews()` against
`ImageViews(rq_bins=8)` (RQ per sample and RGB channel after crop, flip and jitter), from the same
weights. Warm-up steps first, then the timed steps alternate and the median is reported. Target
(issue): RQ adds <= 5% to the step. Use `--threads 1` on a shared CPU (see cq_overhead.py).

    python benchmarks/rq_overhead.py --batch 64 --repeats 15 --threads 1 --out rq_overhead.md
"""

from __future__ import annotations

import statistics

import torch
from common import report, resolve_device
from cq_overhead import (
    method_step,
    random_images,
    run_info,
    simclr_method,
    simclr_parser,
    table,
    time_steps,
)

from ssl_lightning.augment.image_views import ImageViews

TARGET = 1.05


def main() -> None:
    parser = simclr_parser(__doc__, repeats=15)
    parser.add_argument("--bins", type=int, default=8, help="RQ bins per channel")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    images = random_images(args.batch, args.size, device)
    methods = {
        "simclr": simclr_method(args.stem, ImageViews()),
        "simclr_rq": simclr_method(args.stem, ImageViews(rq_bins=args.bins)),
    }
    steps = {name: method_step(method.to(device), images) for name, method in methods.items()}
    timings = time_steps(steps, args.warmup, args.repeats)

    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratio = medians["simclr_rq"] / medians["simclr"]
    result = {
        **run_info(args, device),
        "bins": args.bins,
        "seconds": timings,
        "median_seconds": medians,
        "ratio_to_simclr": ratio,
        "target": TARGET,
        "meets_target": ratio <= TARGET,
    }
    markdown = "\n".join(
        [
            f"# RQ step overhead: SimCLR, ResNet-18 ({args.stem} stem), "
            f"2 x {args.batch} x 3 x {args.size}^2, {device}, {result['threads']} threads",
            "",
            *table(timings, "simclr", {"simclr_rq": TARGET}),
            "",
            f"torch {torch.__version__}, {args.bins} RQ bins, {args.repeats} repeats after {args.warmup} "
            "warm-up steps",
        ]
    )
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
