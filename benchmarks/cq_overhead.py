"""Per-step time of Contrastive Quant (CQ-A, CQ-C) against a plain SimCLR step on the same batch.

The `SimCLR` method with a ResNet-18 encoder (timm, CIFAR stem by default: 3x3 stride-1 first
conv, no max-pool), its projection MLP (512 -> 512 -> 128), two on-device `ImageViews` of a 32x32
batch, NT-Xent, backward and an SGD step. Plain SimCLR runs both views through the network in one
pass; CQ-A and CQ-C (`quant=ContrastiveQuantConfig(...)`) run the fake-quantized encoder (weights
and input activations of every conv, heads at full precision) at the two precisions the method
draws for the step from 6-16 (CQ-A: 2 passes of B; CQ-C: 2 passes of 2B). All methods start from
the same weights. Warm-up steps first, then the timed steps alternate between the methods and the
median is reported. Targets (issue): CQ-A <= 1.5x and CQ-C <= 2.5x the plain step. On a CPU
shared with other jobs, `--threads 1` gives far steadier numbers (2 OpenMP threads stall whenever
one is descheduled).

    python benchmarks/cq_overhead.py --batch 64 --repeats 7 --threads 1 --out cq_overhead.md
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from common import benchmark_parser, report, resolve_device

from ssl_lightning.augment.image_views import ImageViews
from ssl_lightning.backbones.image import TimmImageEncoder
from ssl_lightning.methods import ContrastiveQuantConfig, SimCLR

TARGETS = {"cq_a": 1.5, "cq_c": 2.5}


def simclr_parser(description: str, repeats: int) -> argparse.ArgumentParser:
    """The common benchmark options plus --size, --stem and --out of the SimCLR step benchmarks."""
    parser = benchmark_parser(description, batch=64, repeats=repeats, warmup=2, unit="steps")
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument(
        "--stem", choices=["cifar", "imagenet"], default="cifar", help="ResNet-18 first layers"
    )
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    return parser


def random_images(batch: int, size: int, device: torch.device) -> torch.Tensor:
    """A fixed batch of uniform images `[batch, 3, size, size]` in [0, 1] on `device`."""
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)


def run_info(args: argparse.Namespace, device: torch.device) -> dict[str, object]:
    """What a SimCLR step benchmark ran on: device, threads, batch, image size, stem, repeats, torch."""
    return {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "size": args.size,
        "stem": args.stem,
        "repeats": args.repeats,
        "torch": torch.__version__,
    }


def simclr_method(
    stem: str, views: ImageViews | None = None, quant: ContrastiveQuantConfig | None = None, seed: int = 0
) -> SimCLR:
    """SimCLR with a ResNet-18 (`stem`: "cifar" or "imagenet") and a 512 -> 512 -> 128 projector;
    the same `seed` gives the same weights."""
    torch.manual_seed(seed)
    encoder = TimmImageEncoder("resnet18", cifar_stem=stem == "cifar")
    return SimCLR(encoder, views, projection_dim=128, hidden_dim=512, temperature=0.5, quant=quant)


def method_step(method: SimCLR, images: torch.Tensor) -> Callable[[], float]:
    """One training step of `method` on `images[B, 3, H, W]` (views, loss, backward, SGD), timed in seconds.

    With CQ the step draws its precisions as training does (`quant.precisions_at(step)`).
    """
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)
    steps = 0

    def step() -> float:
        nonlocal steps
        if images.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        if method.quant is None:
            loss = method.two_view_loss(images)
        else:
            loss = method.contrastive_quant_loss(images, *method.quant.precisions_at(steps))
        loss.backward()
        optimizer.step()
        if images.is_cuda:
            torch.cuda.synchronize()
        steps += 1
        return time.perf_counter() - start

    return step


def time_steps(steps: dict[str, Callable[[], float]], warmup: int, repeats: int) -> dict[str, list[float]]:
    """`warmup` untimed rounds, then `repeats` timed rounds; each round runs every step once, in turn."""
    for _ in range(warmup):
        for step in steps.values():
            step()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            timings[name].append(step())
    return timings


def table(timings: dict[str, list[float]], baseline: str, targets: dict[str, float]) -> list[str]:
    """Markdown rows: median and min seconds per step, the ratio of medians to `baseline`, the target."""
    medians = {name: statistics.median(values) for name, values in timings.items()}
    return [
        f"| method | median s/step | min s/step | x {baseline} | target |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {medians[name]:.4f} | {min(values):.4f} | {medians[name] / medians[baseline]:.3f} | "
            f"{targets.get(name, '-')} |"
            for name, values in timings.items()
        ],
    ]


def main() -> None:
    parser = simclr_parser(__doc__, repeats=7)
    parser.add_argument("--precisions", default="6-16", help="CQ precision set")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    images = random_images(args.batch, args.size, device)
    methods = {
        "simclr": simclr_method(args.stem),
        **{
            name: simclr_method(args.stem, quant=ContrastiveQuantConfig(name, precision_set=args.precisions))
            for name in TARGETS
        },
    }
    steps = {name: method_step(method.to(device), images) for name, method in methods.items()}
    timings = time_steps(steps, args.warmup, args.repeats)

    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratios = {name: medians[name] / medians["simclr"] for name in TARGETS}
    result = {
        **run_info(args, device),
        "precisions": args.precisions,
        "seconds": timings,
        "median_seconds": medians,
        "ratio_to_simclr": ratios,
        "targets": TARGETS,
        "meets_targets": {name: ratios[name] <= TARGETS[name] for name in TARGETS},
    }
    markdown = "\n".join(
        [
            f"# CQ step overhead: SimCLR, ResNet-18 ({args.stem} stem), "
            f"2 x {args.batch} x 3 x {args.size}^2, {device}, {result['threads']} threads",
            "",
            *table(timings, "simclr", TARGETS),
            "",
            f"torch {torch.__version__}, precision set {args.precisions}, {args.repeats} repeats "
            f"after {args.warmup} warm-up steps",
        ]
    )
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
