"""Throughput of the batched `kaldi_fbank` against torchaudio's `kaldi.fbank` looped over the batch.

BEATs settings (16 kHz, 128 mels, 25/10 ms frames) on int16-scale noise. Both run on the same batch,
with the same thread count, after warm-up runs; the timed repeats alternate between the two and the
median is reported. Also reports the max abs difference between their outputs.

    python benchmarks/fbank_throughput.py --batch 32 --seconds 10 --repeats 10 --out fbank.md
"""

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchaudio
from common import benchmark_parser, report, resolve_device

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


def main() -> None:
    parser = benchmark_parser(__doc__, batch=32, repeats=10, warmup=2, unit="calls")
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
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
