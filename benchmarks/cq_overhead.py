"""Per-step time of Contrastive Quant (CQ-A, CQ-C) against a plain SimCLR step on the same batch.

ResNet-18 (timm, CIFAR stem by default: 3x3 stride-1 first conv, no max-pool) with a 2-layer
projection head, two views of a 32x32 batch, NT-Xent, backward and an SGD step. Plain SimCLR runs
the unquantized network once on both views concatenated; CQ-A and CQ-C run the fake-quantized
backbone (weights and input activations of every conv, head at full precision) at two precisions
drawn from 6-16, via `embed_branches` (CQ-A: 2 forwards of B; CQ-C: 2 forwards of 2B). Warm-up
steps first, then the timed steps alternate between the three and the median is reported.
Targets (issue): CQ-A <= 1.5x and CQ-C <= 2.5x the plain step. On a CPU shared with other jobs,
`--threads 1` gives far steadier numbers (2 OpenMP threads stall whenever one is descheduled).

    python benchmarks/cq_overhead.py --batch 64 --repeats 5 --threads 1 --out cq_overhead.md
"""

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import timm
import torch
from torch import Tensor, nn

from ssl_lightning.nn.losses import NTXentLoss
from ssl_lightning.nn.losses.contrastive_quant import ContrastiveQuantLoss, embed_branches
from ssl_lightning.nn.quantization import PrecisionSampler
from ssl_lightning.nn.quantized_model import quantize_model

TARGETS = {"cq_a": 1.5, "cq_c": 2.5}


def simclr_network(stem: str) -> nn.Sequential:
    """ResNet-18 backbone `[B, 3, 32, 32] -> [B, 512]` and projection head `-> [B, 128]`."""
    backbone = timm.create_model("resnet18", pretrained=False, num_classes=0)
    if stem == "cifar":
        backbone.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        backbone.maxpool = nn.Identity()
    head = nn.Sequential(nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 128))
    return nn.Sequential(backbone, head)


def make_step(network: nn.Module, loss: Callable[[], Tensor]) -> Callable[[], float]:
    """One optimisation step (forward inside `loss`, backward, SGD) that returns its wall-clock seconds."""
    optimizer = torch.optim.SGD(network.parameters(), lr=0.01, momentum=0.9)

    def step() -> float:
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()
        return time.perf_counter() - start

    return step


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=64, help="samples per view")
    parser.add_argument("--size", type=int, default=32, help="image height and width")
    parser.add_argument(
        "--stem", choices=["cifar", "imagenet"], default="cifar", help="ResNet-18 first layers"
    )
    parser.add_argument("--precisions", default="6-16", help="CQ precision set")
    parser.add_argument("--repeats", type=int, default=5, help="timed steps of each method")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each method first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the result here (.json for JSON, else markdown)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    plain = simclr_network(args.stem)
    quantized = copy.deepcopy(plain)
    quantize_model(quantized[0])
    view1, view2 = torch.randn(2, args.batch, 3, args.size, args.size)
    ntxent = NTXentLoss(temperature=0.5)
    sampler = PrecisionSampler.from_set(args.precisions, seed=args.seed)

    def simclr_loss() -> Tensor:
        z1, z2 = plain(torch.cat([view1, view2])).chunk(2)
        return ntxent(z1, z2)

    def cq_loss(objective: str) -> Callable[[], Tensor]:
        criterion = ContrastiveQuantLoss(ntxent, objective)

        def loss() -> Tensor:
            q1, q2 = sampler.sample_pair()
            views, precisions = {1: view1, 2: view2}, {1: q1, 2: q2}
            return criterion(embed_branches(quantized, views, precisions, criterion.branches))

        return loss

    steps = {
        "simclr": make_step(plain, simclr_loss),
        "cq_a": make_step(quantized, cq_loss("cq_a")),
        "cq_c": make_step(quantized, cq_loss("cq_c")),
    }
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    timings: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            timings[name].append(step())

    medians = {name: statistics.median(values) for name, values in timings.items()}
    ratios = {name: medians[name] / medians["simclr"] for name in TARGETS}
    result = {
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "size": args.size,
        "stem": args.stem,
        "precisions": args.precisions,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "median_seconds": medians,
        "min_seconds": {name: min(values) for name, values in timings.items()},
        "ratio_to_simclr": ratios,
        "targets": TARGETS,
        "meets_targets": {name: ratios[name] <= TARGETS[name] for name in TARGETS},
    }
    markdown = "\n".join(
        [
            f"# CQ step overhead: ResNet-18 ({args.stem} stem), 2 x {args.batch} x 3 x {args.size}^2, "
            f"CPU, {result['threads']} threads",
            "",
            "| method | median s/step | min s/step | x SimCLR | target |",
            "|---|---|---|---|---|",
            *[
                f"| {name} | {medians[name]:.3f} | {result['min_seconds'][name]:.3f} | "
                f"{medians[name] / medians['simclr']:.2f} | {TARGETS.get(name, '-')} |"
                for name in steps
            ],
            "",
            f"torch {torch.__version__}, precision set {args.precisions}, {args.repeats} repeats "
            f"after {args.warmup} warm-up steps",
        ]
    )
    print(markdown)
    if args.out is not None:
        with open(args.out, "w") as file:
            file.write(json.dumps(result, indent=2) if args.out.endswith(".json") else markdown + "\n")


if __name__ == "__main__":
    main()
