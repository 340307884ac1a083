"""data2vec 2.0 against data2vec 1.0: masked student views per second, token passes, EMA share of a step.

Both modes train the same `Data2VecAudioEncoder` on the same waveform batch; one step is the method's
forward (teacher targets + student + head/decoder + loss), backward, AdamW step and the teacher's EMA
update, as `Data2Vec.training_step` + `optimizer_step` run it.

- `1.0`: one student view per teacher pass, span masks (0.65, 10) replaced by the mask embedding, the
  student encodes every frame, Linear regression head (data2vec speech).
- `2.0`: `clone_batch` M = 8 student views per teacher pass, 1-D block masks (0.5, 5), the student
  encodes only the visible frames (positional conv on the zero-masked full sequence, then gather), the
  4-layer conv decoder (data2vec 2.0 audio).

Reported per mode: masked student views per second (batch x M / step time), Transformer token passes
per step (teacher tokens + student tokens), and the EMA update's share of the step time (the update
timed alone, over the median step). Timed steps alternate between the modes after warm-up; medians.
The default model is a reduced data2vec audio Base (`--layers 4 --dim 384`, the full conv feature
encoder with 512 channels); `--base` runs the paper's 12 x 768.

    python benchmarks/data2vec_efficiency.py --batch 4 --seconds 4 --repeats 5 --out d2v_eff.md
    python benchmarks/data2vec_efficiency.py --base --batch 8 --seconds 10 --device cuda   # on a GPU
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
from common import benchmark_parser, report, resolve_device

from ssl_lightning.backbones.data2vec_audio import Data2VecAudioConfig, Data2VecAudioEncoder
from ssl_lightning.methods.data2vec import Data2Vec
from ssl_lightning.methods.data2vec_config import DecoderConfig, MaskingConfig, TargetConfig

SAMPLE_RATE = 16000
MODES = ("1.0", "2.0")


def encoder_config(args: argparse.Namespace) -> Data2VecAudioConfig:
    """The encoder of the command line, dropouts and layer drop off for timing."""
    config = Data2VecAudioConfig.base()
    sizes = (
        {}
        if args.base
        else dict(
            hidden_size=args.dim,
            num_hidden_layers=args.layers,
            num_attention_heads=args.dim // 64,
            intermediate_size=4 * args.dim,
        )
    )
    off = dict(hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0)
    return Data2VecAudioConfig(**{**config.__dict__, **sizes, **off})


def build(mode: str, config: Data2VecAudioConfig, device: torch.device) -> Data2Vec:
    """The data2vec model of one mode on a fresh encoder with the same seed (same weights)."""
    torch.manual_seed(0)
    encoder = Data2VecAudioEncoder(config)
    top_k = min(8, config.num_hidden_layers)
    targets = TargetConfig(top_k=top_k, sublayer="ffn", layer_norm="instance")
    if mode == "1.0":
        method = Data2Vec(encoder, MaskingConfig("span", 0.65, 10), targets)
    else:
        method = Data2Vec(
            encoder,
            MaskingConfig("block_1d", 0.5, 5),
            targets,
            clone_batch=8,
            visible_only=True,
            decoder=DecoderConfig(decoder_dim=384, kernel_size=7, groups=16, layers=4, input_dropout=0.0),
        )
    return method.to(device).train()


def token_passes(method: Data2Vec, output, frames: int, batch: int) -> int:
    """Transformer token passes of one step: the teacher's B x N plus the student's encoded tokens."""
    student_rows = output.mask.shape[0]
    kept = int((~output.mask).sum()) if method.visible_only else student_rows * frames
    return batch * frames + kept


def step(
    method: Data2Vec, optimizer: torch.optim.Optimizer, batch: dict, index: int, sync
) -> tuple[float, float, object]:
    """One training step; returns (step seconds, EMA update seconds, output)."""
    generator = torch.Generator(device=batch["audio"].device).manual_seed(index)
    sync()
    start = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    output = method(batch, generator)
    output.loss.backward()
    optimizer.step()
    sync()
    ema_start = time.perf_counter()
    method.teacher.update(method.encoder, 0.9999)
    sync()
    end = time.perf_counter()
    return end - start, end - ema_start, output


def main() -> None:
    parser = benchmark_parser(__doc__, batch=4, repeats=5, warmup=1, unit="steps")
    parser.add_argument("--layers", type=int, default=4, help="Transformer blocks (reduced model)")
    parser.add_argument("--dim", type=int, default=384, help="model width (reduced model)")
    parser.add_argument("--base", action="store_true", help="the paper's Base model (12 x 768)")
    parser.add_argument("--out", type=Path, default=None)
    parser.set_defaults(seconds=4.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    config = encoder_config(args)
    methods = {mode: build(mode, config, device) for mode in MODES}
    optimizers = {mode: torch.optim.AdamW(m.parameters(), lr=1e-4) for mode, m in methods.items()}
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(args.batch, int(args.seconds * SAMPLE_RATE), generator=generator).to(device)
    batch = {"audio": audio}
    frames = methods["1.0"].encoder.embed_tokens(audio[:1])[0].shape[1]
    times = {mode: [] for mode in MODES}
    emas = {mode: [] for mode in MODES}
    passes = {}
    for index in range(args.warmup + args.repeats):
        for mode in MODES:
            seconds, ema, output = step(methods[mode], optimizers[mode], batch, index, sync)
            passes[mode] = token_passes(methods[mode], output, frames, args.batch)
            if index >= args.warmup:
                times[mode].append(seconds)
                emas[mode].append(ema)
    result = {
        "device": str(device),
        "threads": args.threads,
        "batch": args.batch,
        "seconds": args.seconds,
        "frames": frames,
        "layers": config.num_hidden_layers,
        "dim": config.hidden_size,
    }
    rows = []
    for mode in MODES:
        median = statistics.median(times[mode])
        views = args.batch * methods[mode].clone_batch
        ema_share = statistics.median(emas[mode]) / median
        result[mode] = {
            "step_s": median,
            "views_per_s": views / median,
            "token_passes": passes[mode],
            "ema_share": ema_share,
            "steps_s": times[mode],
        }
        rows.append(
            f"| {mode} | {views} | {median:.3f} | {views / median:.2f} | {passes[mode]} "
            f"| {100 * ema_share:.2f}% |"
        )
    ratio = result["2.0"]["views_per_s"] / result["1.0"]["views_per_s"]
    result["views_per_s_ratio"] = ratio
    markdown = "\n".join(
        [
            f"data2vec audio {config.num_hidden_layers} x {config.hidden_size}, "
            f"{args.batch} x {args.seconds} s ({frames} frames), {device}, {args.threads} threads, "
            f"median of {args.repeats} steps",
            "",
            "| mode | student views / step | step (s) | views / s | token passes / step | EMA share |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"2.0 / 1.0 views per second: {ratio:.2f}x",
        ]
    )
    report(markdown, result, args.out)


if __name__ == "__main__":
    main()
