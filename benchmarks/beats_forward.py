"""Forward throughput of `BEATsEncoder`: `F.scaled_dot_product_attention` against the official op order.

Both paths run the same weights on the same batch: `sdpa` (the default, `fused_attn=True`) and
`official_order` (`fused_attn=False`: q scaled by 1/(32 sqrt(hd)), explicit scores, row max
subtracted, x32, -inf at padded keys, gated bias added, softmax, as in `microsoft/unilm` `beats/`).
The timed repeats alternate between the two after warm-up runs; the median is reported, with the
max abs difference between their features. The model is the released architecture
(`BEATsConfig.base()`, random weights) unless `--checkpoint` names an official checkpoint.

    python benchmarks/beats_forward.py --batch 4 --seconds 10 --repeats 5 --out beats_forward.md
"""

import statistics
import time
from pathlib import Path

import torch
from common import benchmark_parser, report, resolve_device

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


def main() -> None:
    parser = benchmark_parser(__doc__, batch=4, repeats=5, warmup=1, unit="calls")
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
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
