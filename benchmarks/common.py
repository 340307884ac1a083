"""What every benchmark script shares: its common arguments and device choice."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch


def benchmark_parser(
    description: str, batch: int, repeats: int, warmup: int, unit: str
) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes; `unit` names what is timed."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=batch, help="clips (or samples) per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds")
    parser.add_argument("--repeats", type=int, default=repeats, help=f"timed {unit} of each path")
    parser.add_argument("--warmup", type=int, default=warmup, help=f"untimed {unit} of each path first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    return parser


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when there is one; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


def report(markdown: str, result: dict[str, Any], out: Path | None) -> None:
    """Print the markdown summary and, with `--out`, write it there (JSON of `result` for a .json path)."""
    print(markdown)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) if out.suffix == ".json" else markdown + "\n")
