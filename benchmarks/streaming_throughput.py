"""Shard-write and stream-read throughput of `shard_audio` and `StreamingAudioDataModule` (10 s clips).

    python benchmarks/streaming_throughput.py --clips 200 --root /tmp/streaming_bench

Writes `--clips` synthetic 10 s clips twice (16 kHz mono wav, 44.1 kHz stereo flac), shards each
with 1 and 2 workers, then streams the wav shards for a few epochs with 0 and 2 loader workers.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from ssl_lightning.data.sharding import shard_audio
from ssl_lightning.data.streaming import StreamingAudioDataModule

SOURCES = (("16k-mono-wav", 16000, 1, "wav"), ("44k-stereo-flac", 44100, 2, "flac"))


def make_clips(folder: Path, count: int, rate: int, channels: int, suffix: str) -> None:
    """`count` 10 s tones with noise, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    t = np.arange(10 * rate) / rate
    for k in range(count):
        x = 0.3 * np.sin(2 * np.pi * (200 + 10 * k) * t) + 0.05 * rng.standard_normal(t.size)
        sf.write(
            folder / f"{k:05d}.{suffix}", np.repeat(x[:, None], channels, axis=1), rate, subtype="PCM_16"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=Path("runs/bench_streaming"))
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    for name, rate, channels, suffix in SOURCES:
        source = args.root / name
        if not source.exists():
            make_clips(source, args.clips, rate, channels, suffix)
        for workers in (1, 2):
            out = args.root / f"shards-{name}-{workers}"
            shutil.rmtree(out, ignore_errors=True)
            report = shard_audio(source, out, num_workers=workers)
            size = sum(f.stat().st_size for f in out.glob("*.bin")) / 1e6
            print(
                f"write {name} workers={workers}: {report.num_written} clips in "
                f"{report.elapsed_seconds:.2f} s = {report.clips_per_second:.1f} clips/s, {size:.1f} MB"
            )
    shards = args.root / "shards-16k-mono-wav-1"
    for workers in (0, 2):
        datamodule = StreamingAudioDataModule(
            str(shards), batch_size=32, num_workers=workers, clip_seconds=10.0
        )
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        for epoch in range(args.epochs):
            start = time.perf_counter()
            count = sum(len(batch["clip_id"]) for batch in loader)
            seconds = time.perf_counter() - start
            print(
                f"read workers={workers} epoch {epoch}: {count} clips in {seconds:.2f} s = "
                f"{count / seconds:.0f} clips/s ({count * 10 / seconds / 3600:.2f} h of audio per s)"
            )


if __name__ == "__main__":
    main()
