"""Throughput of the batched `kaldi_fbank` against torchaudio's `kaldi.fbank` looped over the batch.

BEATs settings (16 kHz, 128 mels, 25/10 ms frames) on int16-scale noise. Both run on the same batch,
with the same thread count, after warm-up runs; the timed repeats alternate between the two and the
median is reported. Also reports the max abs difference between their outputs.

    python benchmarks/fbank_throughput.py --batch 32 --seconds 10 --repeats 10 --out fbank.md
"""

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchaudio

from ssl_lightning.audio import kaldi_fbank

SAMPLE_RATE = 16000
NUM_MEL_BINS = 128


def looped_torchaudio_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """Reference: torchaudio's `kaldi.fbank` row by row, stacked: `[B, T]` -> `[B, frames, 128]`."""
    return torch.stack(
        [
            torchaudio.compliance.kaldi.fbank(
                row[None], num_mel_bins=NUM_MEL_BINS, sample_frequency=SAMPLE_RATE
            )
            for row in waveform
        ]
    )


def batched_fbank(waveform: torch.Tensor) -> torch.Tensor:
    """`kaldi_fbank` on the whole batch: `[B, T]` -> `[B, frames, 128]`."""
    return kaldi_fbank(waveform, sample_rate=SAMPLE_RATE, num_mel_bins=NUM_MEL_BINS)


def seconds_per_call(function: Callable[[torch.Tensor], torch.Tensor], waveform: torch.Tensor) -> float:
    """Wall-clock seconds of one call, synchronising the device."""
    if waveform.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function(waveform)
    if waveform.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda was requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=32, help="clips per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls of each implementation")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each implementation first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    num_samples = int(args.seconds * SAMPLE_RATE)
    waveform = ((torch.rand(args.batch, num_samples, generator=generator) * 2 - 1) * 32768).to(device)

    implementations = {"torchaudio_loop": looped_torchaudio_fbank, "batched": batched_fbank}
    with torch.inference_mode():
        outputs = {name: function(waveform) for name, function in implementations.items()}
        for _ in range(args.warmup):
            for function in implementations.values():
                function(waveform)
        timings: dict[str, list[float]] = {name: [] for name in implementations}
        for _ in range(args.repeats):
            for name, function in implementations.items():
                timings[name].append(seconds_per_call(function, waveform))

    medians = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": args.batch,
        "seconds": args.seconds,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "torchaudio": torchaudio.__version__,
        "median_seconds": medians,
        "min_seconds": {name: min(values) for name, values in timings.items()},
        "clips_per_second": {name: args.batch / seconds for name, seconds in medians.items()},
        "speedup": medians["torchaudio_loop"] / medians["batched"],
        "max_abs_difference": (outputs["batched"] - outputs["torchaudio_loop"]).abs().max().item(),
    }
    markdown = "\n".join(
        [
            f"# fbank throughput: {args.batch} x {args.seconds} s, {device}, {result['threads']} threads",
            "",
            "| implementation | median s/batch | min s/batch | clips/s |",
            "|---|---|---|---|",
            *[
                f"| {name} | {medians[name]:.4f} | {result['min_seconds'][name]:.4f} | "
                f"{result['clips_per_second'][name]:.1f} |"
                for name in implementations
            ],
            "",
            f"speed-up (loop / batched, medians): {result['speedup']:.2f}x; "
            f"max abs difference: {result['max_abs_difference']:.3g}",
            f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, {args.repeats} repeats",
        ]
    )
    print(markdown)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) if args.out.suffix == ".json" else markdown + "\n")


if __name__ == "__main__":
    main()
