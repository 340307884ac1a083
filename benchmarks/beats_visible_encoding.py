"""BEATs pre-training step (masked audio modelling, 75% masking): visible-only against all-token encoding.

Both paths train the same `MaskedAudioModeling` model on the same batch with the same masks; one step is
tokenizer labels + forward + backward + AdamW step.

- `visible`: the method's own step: the encoder runs on the K = N / 4 visible patches only
  (`BEATsEncoder.encode_patches(..., keep_index)`; its conv positional embedding is evaluated at the
  kept positions only, from the kept patches only), the label predictor on all N positions.
- `all_tokens`: the encoder runs on all N patches, the masked ones zeroed (no masked content leaks),
  then its outputs at masked positions are zeroed as in the paper's predictor input.

Speed: timed steps alternate between the two paths after warm-up steps; the median is reported as
clips/s. Memory: one more step of each path is profiled for its peak tensor memory: on CPU the
maximum over time of all live tensors in `torch.profiler`'s memory timeline (`profile_memory=True`,
`export_memory_timeline`; parameters and AdamW state included, reported apart as `static`), on CUDA
`torch.cuda.max_memory_allocated`. The default model is the paper's ViT-B
(`BEATsConfig.base()`: 12 x 768, 12 heads, dropout off for timing) with the 2-layer label predictor and
the 1024 x 256 random-projection tokenizer, 2 clips of 10 s (496 patches, 124 visible).

    python benchmarks/beats_visible_encoding.py --batch 2 --seconds 10 --repeats 5 --out visible.md
    python benchmarks/beats_visible_encoding.py --layers 4 --dim 256 --heads 4 --batch 8   # small ViT
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from common import benchmark_parser, report, resolve_device

from ssl_lightning.backbones.beats import BEATsConfig, BEATsEncoder
from ssl_lightning.methods.beats import MAMOutput, MaskedAudioModeling, masked_cross_entropy, scatter_visible
from ssl_lightning.nn.masking import random_patch_mask
from ssl_lightning.tokenizers import RandomProjectionTokenizer

SAMPLE_RATE = 16000
PATHS = ("visible", "all_tokens")


def build(args: argparse.Namespace, device: torch.device) -> MaskedAudioModeling:
    """The MAM model of the command line (random init, dropout and layer drop off)."""
    overrides = dict(
        dropout=0.0, attention_dropout=0.0, encoder_layerdrop=0.0, layer_wise_gradient_decay_ratio=1.0
    )
    if args.layers:
        overrides.update(
            encoder_layers=args.layers, encoder_embed_dim=args.dim, encoder_attention_heads=args.heads
        )
        overrides.update(encoder_ffn_embed_dim=4 * args.dim)
    encoder = BEATsEncoder(BEATsConfig.base(**overrides))
    tokenizer = RandomProjectionTokenizer(codebook_size=1024, codebook_dim=256)
    return MaskedAudioModeling(encoder, tokenizer, predictor_layers=args.predictor_layers).to(device)


def all_tokens_forward(method: MaskedAudioModeling, batch: dict, generator: torch.Generator) -> MAMOutput:
    """`MaskedAudioModeling.forward` with the encoder on all N patches (masked patches zeroed)."""
    audio, padding_mask = batch["audio"], batch.get("padding_mask")
    with torch.no_grad():
        labels = method.tokenizer.extract_labels(audio, padding_mask)
    patches, patch_padding = method.encoder.embed_patches(audio, padding_mask)
    batch_size, num_patches = patches.shape[:2]
    keep_index, _, mask = random_patch_mask(
        batch_size, num_patches, method.mask_ratio, generator, patch_padding, device=patches.device
    )
    features = method.encoder.encode_patches(patches.masked_fill(mask[..., None], 0.0), patch_padding)
    visible = features.gather(1, keep_index[..., None].expand(-1, -1, features.shape[-1]))
    logits = method.label_predictor(scatter_visible(visible, keep_index, num_patches), patch_padding)
    if patch_padding is not None:
        mask = mask & ~patch_padding
    loss = masked_cross_entropy(logits, labels, mask)
    return MAMOutput(logits, labels, mask, num_patches, loss)


def step(method, optimizer, batch, path: str, dtype: torch.dtype) -> float:
    """Seconds of one training step on `path` (device synchronised)."""
    device = batch["audio"].device
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    generator = torch.Generator(device=device).manual_seed(0)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        output = (
            method(batch, generator) if path == "visible" else all_tokens_forward(method, batch, generator)
        )
    optimizer.zero_grad(set_to_none=True)
    output.loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def setup(args: argparse.Namespace):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = resolve_device(args.device)
    method = build(args, device).train()
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    samples = int(args.seconds * SAMPLE_RATE)
    audio = (torch.rand(args.batch, samples) * 1.8 - 0.9).to(device)
    batch = {
        "audio": audio,
        "padding_mask": torch.zeros(args.batch, samples, dtype=torch.bool, device=device),
    }
    return method, optimizer, batch, device


def peak_memory_mib(method, optimizer, batch, path: str, dtype: torch.dtype, workdir: Path) -> float:
    """Peak tensor memory (MiB) of one training step on `path`."""
    device = batch["audio"].device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        step(method, optimizer, batch, path, dtype)
        return torch.cuda.max_memory_allocated() / 2**20
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(
        activities=activities, profile_memory=True, record_shapes=True, with_stack=True
    ) as profiler:
        step(method, optimizer, batch, path, dtype)
    timeline = workdir / f"memory_{path}.json"
    profiler.export_memory_timeline(str(timeline), device="cpu")
    _, sizes = json.loads(timeline.read_text())
    return max(sum(row) for row in sizes) / 2**20


def main() -> None:
    parser = benchmark_parser(__doc__, batch=2, repeats=5, warmup=1, unit="steps")
    parser.add_argument(
        "--layers", type=int, help="encoder layers (default: the ViT-B of BEATsConfig.base())"
    )
    parser.add_argument("--dim", type=int, default=256, help="encoder width, with --layers")
    parser.add_argument("--heads", type=int, default=4, help="attention heads, with --layers")
    parser.add_argument("--predictor-layers", type=int, default=2, help="label predictor layers")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    args = parser.parse_args()

    method, optimizer, batch, device = setup(args)
    dtype = getattr(torch, args.dtype)
    timings: dict[str, list[float]] = {path: [] for path in PATHS}
    for path in PATHS:
        for _ in range(args.warmup):
            step(method, optimizer, batch, path, dtype)
    for _ in range(args.repeats):
        for path in PATHS:
            timings[path].append(step(method, optimizer, batch, path, dtype))
    medians = {path: statistics.median(values) for path, values in timings.items()}
    with tempfile.TemporaryDirectory() as workdir:
        memory = {
            path: peak_memory_mib(method, optimizer, batch, path, dtype, Path(workdir)) for path in PATHS
        }
    trainable = sum(p.numel() for p in method.parameters() if p.requires_grad)
    static = (
        sum(t.numel() * t.element_size() for t in [*method.parameters(), *method.buffers()]) + 8 * trainable
    )
    config = method.encoder.config
    num_patches = method.encoder.num_patches(batch["audio"].shape[1])
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "dtype": args.dtype,
        "model": f"{config.encoder_layers} x {config.encoder_embed_dim}, "
        f"{config.encoder_attention_heads} heads, {args.predictor_layers}-layer predictor",
        "parameters": trainable,
        "batch": args.batch,
        "seconds": args.seconds,
        "patches": num_patches,
        "visible_patches": num_patches - round(method.mask_ratio * num_patches),
        "repeats": args.repeats,
        "torch": torch.__version__,
        "median_seconds": medians,
        "clips_per_second": {path: args.batch / seconds for path, seconds in medians.items()},
        "speedup": medians["all_tokens"] / medians["visible"],
        "peak_memory_mib": memory,
        "static_memory_mib": static / 2**20,
    }
    markdown = "\n".join(
        [
            f"# BEATs MAM step, 75% masking: {result['model']} ({trainable / 1e6:.1f}M trainable), "
            f"{args.batch} x {args.seconds} s ({num_patches} patches, {result['visible_patches']} visible), "
            f"{device}, {args.dtype}, {result['threads']} threads",
            "",
            "| encoder input | median s/step | clips/s | peak tensor memory (MiB) |",
            "|---|---|---|---|",
            *[
                f"| {path} | {medians[path]:.3f} | {result['clips_per_second'][path]:.2f} | "
                f"{memory[path]:.0f} |"
                for path in PATHS
            ],
            "",
            f"speed-up (all_tokens / visible, medians): {result['speedup']:.2f}x; static memory (weights, "
            f"buffers, AdamW state) {result['static_memory_mib']:.0f} MiB of each peak; "
            f"torch {torch.__version__}, {args.repeats} alternating repeats after {args.warmup} warm-up",
        ]
    )
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
