"""Forward throughput of `BEATsEncoder`: `F.scaled_dot_product_attention` against the official op order.

Both paths run the same weights on the same batch: `sdpa` (the default, `fused_attn=True`) and
`official_order` (`fused_attn=False`: q scaled by 1/(32 sqrt(hd)), explicit scores, row max
subtracted, x32, -inf at padded keys, gated bias added, softmax, as in `microsoft/unilm` `beats/`).
The timed repeats alternate between the two after warm-up runs; the median is reported, with the
max abs difference between their features. The model is the released architecture
(`BEATsConfig.base()`, random weights) unless `--checkpoint` names an official checkpoint.

    python benchmarks/beats_forward.py --batch 4 --seconds 10 --repeats 5 --out beats_forward.md
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from ssl_lightning.backbones.beats import BEATsConfig, BEATsEncoder
from ssl_lightning.nn.attention import MultiheadSelfAttention

SAMPLE_RATE = 16000


def set_fused_attn(encoder: BEATsEncoder, fused: bool) -> None:
    """Switch every attention layer of `encoder` between SDPA and the official op order."""
    for module in encoder.modules():
        if isinstance(module, MultiheadSelfAttention):
            module.fused_attn = fused


def seconds_per_call(encoder: BEATsEncoder, waveform: torch.Tensor, dtype: torch.dtype) -> float:
    """Wall-clock seconds of one forward pass, synchronising the device."""
    if waveform.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    with torch.autocast(waveform.device.type, dtype=dtype, enabled=dtype != torch.float32):
        encoder(waveform)
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
    parser.add_argument("--batch", type=int, default=4, help="clips per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length in seconds")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls of each path")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls of each path first")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--checkpoint", type=Path, help="official BEATs checkpoint (default: random weights)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    encoder = (
        BEATsEncoder.from_official_checkpoint(args.checkpoint)
        if args.checkpoint
        else BEATsEncoder(BEATsConfig.base())
    )
    encoder = encoder.eval().to(device)
    waveform = (torch.rand(args.batch, int(args.seconds * SAMPLE_RATE)) * 1.8 - 0.9).to(device)

    paths = {"sdpa": True, "official_order": False}
    outputs, timings = {}, {name: [] for name in paths}
    with torch.inference_mode():
        for name, fused in paths.items():
            set_fused_attn(encoder, fused)
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                outputs[name] = encoder(waveform)[0].float()
            for _ in range(args.warmup):
                seconds_per_call(encoder, waveform, dtype)
        for _ in range(args.repeats):
            for name, fused in paths.items():
                set_fused_attn(encoder, fused)
                timings[name].append(seconds_per_call(encoder, waveform, dtype))

    medians = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "batch": args.batch,
        "seconds": args.seconds,
        "patches": outputs["sdpa"].shape[1],
        "repeats": args.repeats,
        "torch": torch.__version__,
        "median_seconds": medians,
        "min_seconds": {name: min(values) for name, values in timings.items()},
        "clips_per_second": {name: args.batch / seconds for name, seconds in medians.items()},
        "speedup": medians["official_order"] / medians["sdpa"],
        "max_abs_difference": (outputs["sdpa"] - outputs["official_order"]).abs().max().item(),
        "max_abs_feature": outputs["official_order"].abs().max().item(),
    }
    markdown = "\n".join(
        [
            f"# BEATs forward: {args.batch} x {args.seconds} s ({result['patches']} patches), {device}, "
            f"{args.dtype}, {result['threads']} threads",
            "",
            "| attention | median s/batch | min s/batch | clips/s |",
            "|---|---|---|---|",
            *[
                f"| {name} | {medians[name]:.4f} | {result['min_seconds'][name]:.4f} | "
                f"{result['clips_per_second'][name]:.2f} |"
                for name in paths
            ],
            "",
            f"speed-up (official_order / sdpa, medians): {result['speedup']:.2f}x; max abs difference "
            f"{result['max_abs_difference']:.3g} (features up to {result['max_abs_feature']:.3g})",
            f"torch {torch.__version__}, {args.repeats} repeats",
        ]
    )
    print(markdown)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) if args.out.suffix == ".json" else markdown + "\n")


if __name__ == "__main__":
    main()
