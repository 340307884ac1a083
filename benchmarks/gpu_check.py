"""The GPU checks of issue 8 in one run; each path is timed as in the other benchmarks (warm-up, then
alternating timed repeats, medians).

(a) fbank: the batched `kaldi_fbank` against torchaudio's `kaldi.fbank` looped over the batch (as
    `fbank_throughput.py`); target >= 10x on a GPU.
(b) BEATs masked-audio-modelling training step (as `beats_visible_encoding.py`: ViT-B, 75% masking,
    tokenizer labels + forward + backward + AdamW) under bf16 autocast, visible-only against all-token
    encoding: clips/s and MFU. The FLOPs of one step are counted by `torch.utils.flop_counter`; the
    peak is the dense bf16 peak of the GPU (H100 SXM / H200: 989 TFLOP/s, H100 PCIe: 756), else
    `--peak-tflops`, else a measured bf16 matmul.
(c) BYOL-A training step (the `byol_a_audioset.yaml` model: AudioNTT2020 d 2048, 4096-wide heads,
    Adam, 0.95 s crops) through a Lightning `Trainer` on one device with strategy ddp and
    `sync_batchnorm=True` (every BatchNorm becomes a SyncBatchNorm): samples/s. PyTorch's
    SyncBatchNorm runs on GPUs only, so on CPU the same run keeps BatchNorm.
(d) Contrastive Quant CQ-C (SimCLR, ResNet-18 CIFAR stem, as `cq_overhead.py`) step compiled
    (`torch.compile` of the encoder, as `compile: true` does) against eager. The precisions are
    drawn from {8, 9} with q1 != q2, so the warm-up compiles every graph the timed steps use (each
    further precision costs one more compilation); the first compiled step's time is reported.

`--tiny` (automatic without CUDA) runs every check at a tiny size on the CPU in well under a minute,
with dynamo's `eager` compile backend instead of inductor (which takes minutes to build C++ kernels
on a CPU): it checks that the script runs, not the figures.

    python benchmarks/gpu_check.py --out gpu_check.md     # on a GPU
    python benchmarks/gpu_check.py --tiny --out gpu_check_tiny.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import lightning as L
import torch
from beats_visible_encoding import PATHS
from beats_visible_encoding import setup as beats_setup
from beats_visible_encoding import step as beats_step
from common import report, resolve_device
from cq_overhead import method_step, random_images, simclr_method, time_steps
from fbank_throughput import batched_fbank, looped_torchaudio_fbank, seconds_per_call
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from ssl_lightning.augment import ByolAViews
from ssl_lightning.backbones import ByolAEncoder
from ssl_lightning.methods import BYOL, ContrastiveQuantConfig
from ssl_lightning.nn.optim import OptimizerConfig

SAMPLE_RATE = 16000
FBANK_TARGET = 10.0
CQ_PRECISIONS = "8-9"
PEAK_BF16_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4}  # dense; first match wins


@dataclass(frozen=True)
class Size:
    """The sizes of one run of the four checks."""

    warmup: int
    repeats: int
    fbank_batch: int
    fbank_seconds: float
    beats_layers: int | None  # None: the ViT-B of BEATsConfig.base()
    beats_dim: int
    beats_heads: int
    beats_batch: int
    beats_seconds: float
    byol_d: int
    byol_channels: int
    byol_hidden: int
    byol_batch: int
    cq_batch: int
    cq_image: int
    compile_backend: str
    matmul: int  # side of the bf16 matmul that measures the peak where none is known


FULL = Size(2, 10, 32, 10.0, None, 768, 12, 16, 10.0, 2048, 64, 4096, 256, 256, 32, "inductor", 8192)
TINY = Size(1, 2, 2, 0.5, 1, 32, 2, 2, 1.0, 32, 4, 32, 8, 4, 8, "eager", 256)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def medians(timings: dict[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in timings.items()}


def fbank_check(size: Size, device: torch.device) -> dict:
    """(a) Median seconds per batch of both fbank implementations and the speed-up."""
    generator = torch.Generator().manual_seed(0)
    samples = int(size.fbank_seconds * SAMPLE_RATE)
    waveform = ((torch.rand(size.fbank_batch, samples, generator=generator) * 2 - 1) * 32768).to(device)
    calls = {"torchaudio_loop": looped_torchaudio_fbank, "batched": batched_fbank}
    with torch.inference_mode():
        timings = time_steps(
            {name: lambda f=f: seconds_per_call(f, waveform) for name, f in calls.items()},
            size.warmup,
            size.repeats,
        )
    seconds = medians(timings)
    speedup = seconds["torchaudio_loop"] / seconds["batched"]
    return {
        "batch": size.fbank_batch,
        "seconds": size.fbank_seconds,
        "median_seconds": seconds,
        "speedup": speedup,
        "meets_target": speedup >= FBANK_TARGET,
    }


def peak_flops(device: torch.device, override_tflops: float | None, matmul: int) -> tuple[float, str]:
    """Dense bf16 peak FLOP/s of `device` and where the number comes from."""
    if override_tflops:
        return override_tflops * 1e12, "--peak-tflops"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in PEAK_BF16_TFLOPS.items():
            if key in name:
                return tflops * 1e12, f"{name} datasheet (dense bf16)"
    a = torch.randn(matmul, matmul, device=device, dtype=torch.bfloat16)
    times = []
    for _ in range(3):
        synchronize(device)
        start = time.perf_counter()
        a @ a
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * matmul**3 / min(times), f"measured {matmul}^2 bf16 matmul"


def beats_check(size: Size, device: torch.device, peak: float) -> dict:
    """(b) clips/s, FLOPs per step and MFU of the bf16 MAM step on each encoder input."""
    args = argparse.Namespace(
        threads=torch.get_num_threads(), seed=0, device=device.type, batch=size.beats_batch,
        seconds=size.beats_seconds, layers=size.beats_layers, dim=size.beats_dim, heads=size.beats_heads,
        predictor_layers=2,
    )  # fmt: skip
    method, optimizer, batch, _ = beats_setup(args)
    dtype = torch.bfloat16
    flops = {}
    for path in PATHS:
        with FlopCounterMode(display=False) as counter:
            beats_step(method, optimizer, batch, path, dtype)
        flops[path] = counter.get_total_flops()
    timings = time_steps(
        {path: lambda p=path: beats_step(method, optimizer, batch, p, dtype) for path in PATHS},
        size.warmup,
        size.repeats,
    )
    seconds = medians(timings)
    config = method.encoder.config
    return {
        "model": f"{config.encoder_layers} x {config.encoder_embed_dim}, "
        f"{config.encoder_attention_heads} heads",
        "batch": size.beats_batch,
        "seconds": size.beats_seconds,
        "median_seconds": seconds,
        "clips_per_second": {path: size.beats_batch / s for path, s in seconds.items()},
        "flops_per_step": flops,
        "mfu": {path: flops[path] / seconds[path] / peak for path in PATHS},
        "speedup": seconds["all_tokens"] / seconds["visible"],
    }


class StepTimer(L.Callback):
    """Seconds of every training batch (device synchronised) and the SyncBatchNorm layers trained."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.sync_batchnorm_layers = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sync_batchnorm_layers = sum(isinstance(m, nn.SyncBatchNorm) for m in pl_module.modules())

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        self.seconds.append(time.perf_counter() - self.start)


def byol_check(size: Size, device: torch.device) -> dict:
    """(c) samples/s of the BYOL-A step through a one-device DDP Trainer with sync_batchnorm."""
    torch.manual_seed(0)
    optim = OptimizerConfig(name="adam", lr=3e-4, weight_decay=0.0, warmup_steps=0, min_lr_ratio=1.0)
    method = BYOL(
        ByolAEncoder(d=size.byol_d, channels=size.byol_channels),
        ByolAViews(),
        projection_dim=256,
        hidden_dim=size.byol_hidden,
        predictor_hidden_dim=size.byol_hidden,
        base_tau=0.99,
        final_tau=0.99,
        optim=optim,
    )
    steps = size.warmup + size.repeats
    clips = torch.rand(steps * size.byol_batch, int(0.95 * SAMPLE_RATE)) * 1.8 - 0.9
    loader = DataLoader([{"audio": clip} for clip in clips], batch_size=size.byol_batch, drop_last=True)
    timer = StepTimer()
    sync = device.type == "cuda"
    trainer = L.Trainer(
        accelerator="gpu" if sync else "cpu", devices=1, strategy="ddp", sync_batchnorm=sync,
        max_steps=steps, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[timer],
    )  # fmt: skip
    trainer.fit(method, train_dataloaders=loader)
    seconds = statistics.median(timer.seconds[size.warmup :])
    return {
        "batch": size.byol_batch,
        "sync_batchnorm": sync,
        "sync_batchnorm_layers": timer.sync_batchnorm_layers,
        "median_seconds": seconds,
        "samples_per_second": size.byol_batch / seconds,
    }


def cq_check(size: Size, device: torch.device) -> dict:
    """(d) median seconds per CQ-C step, eager and compiled, and the first compiled step's seconds."""
    torch._dynamo.config.recompile_limit = 16
    images = random_images(size.cq_batch, size.cq_image, device)
    quant = ContrastiveQuantConfig("cq_c", precision_set=CQ_PRECISIONS, distinct=True)
    methods = {name: simclr_method("cifar", quant=quant).to(device) for name in ("eager", "compiled")}
    methods["compiled"].encoder = torch.compile(methods["compiled"].encoder, backend=size.compile_backend)
    steps = {name: method_step(method, images) for name, method in methods.items()}
    first_compiled = steps["compiled"]()
    seconds = medians(time_steps(steps, size.warmup, size.repeats))
    return {
        "batch": size.cq_batch,
        "image": size.cq_image,
        "precisions": CQ_PRECISIONS,
        "backend": size.compile_backend,
        "first_compiled_step_seconds": first_compiled,
        "median_seconds": seconds,
        "speedup": seconds["eager"] / seconds["compiled"],
    }


def markdown(result: dict) -> str:
    fbank, beats, byol, cq = (result[key] for key in ("fbank", "beats_mam", "byol_sync_bn", "cq_c_compile"))
    return "\n".join(
        [
            f"# GPU check: {result['device_name']}, torch {result['torch']}"
            + (" (tiny sizes: not figures)" if result["tiny"] else ""),
            "",
            "| check | path | median s/step | rate | other |",
            "|---|---|---|---|---|",
            *[
                f"| (a) fbank {fbank['batch']} x {fbank['seconds']} s | {name} | {s:.4f} | "
                f"{fbank['batch'] / s:.1f} clips/s | speed-up {fbank['speedup']:.1f}x (target >= 10x) |"
                for name, s in fbank["median_seconds"].items()
            ],
            *[
                f"| (b) BEATs MAM bf16 {beats['model']}, {beats['batch']} x {beats['seconds']} s | {path} | "
                f"{s:.4f} | {beats['clips_per_second'][path]:.2f} clips/s | MFU {beats['mfu'][path]:.1%} "
                f"({beats['flops_per_step'][path] / 1e12:.3g} TFLOP/step) |"
                for path, s in beats["median_seconds"].items()
            ],
            f"| (c) BYOL-A, Trainer ddp x 1 | sync_batchnorm={byol['sync_batchnorm']} | "
            f"{byol['median_seconds']:.4f} | {byol['samples_per_second']:.1f} samples/s | "
            f"{byol['sync_batchnorm_layers']} SyncBatchNorm layers |",
            *[
                f"| (d) CQ-C SimCLR ResNet-18, 2 x {cq['batch']} x {cq['image']}^2 | {name} | {s:.4f} | "
                f"{cq['batch'] / s:.1f} samples/s | compiled/eager speed-up {cq['speedup']:.2f}x |"
                for name, s in cq["median_seconds"].items()
            ],
            "",
            f"MFU against {result['peak_tflops']:.4g} TFLOP/s ({result['peak_source']}); "
            f"CQ-C compile backend {cq['backend']}, "
            f"first compiled step {cq['first_compiled_step_seconds']:.1f} s; "
            f"{result['size']['warmup']} warm-up and {result['size']['repeats']} timed repeats",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="tiny sizes (default without CUDA)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the device, for the MFU")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    parser.add_argument("--out", type=Path, help="write the result here (.json for JSON, else markdown)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tiny = args.tiny or device.type != "cuda"
    size = TINY if tiny else FULL
    peak, source = peak_flops(device, args.peak_tflops, size.matmul)
    result = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "tiny": tiny,
        "size": asdict(size),
        "torch": torch.__version__,
        "peak_tflops": peak / 1e12,
        "peak_source": source,
        "fbank": fbank_check(size, device),
        "beats_mam": beats_check(size, device, peak),
        "cq_c_compile": cq_check(size, device),
        "byol_sync_bn": byol_check(size, device),  # last: it leaves a process group behind
    }
    report(markdown(result), result, args.out)


if __name__ == "__main__":
    main()
