"""Write audio clips into LitData shards for streaming pre-training (`ssl-lightning shard-audio IN OUT`).

Each clip is decoded once with `ssl_lightning.audio.load_audio` (mono, resampled to `sample_rate`),
cut to its first `max_seconds` (None keeps it whole) and stored as 16-bit PCM (value * 32768): `int16`
halves the size of float32 like float16 does, but it is bit-exact for 16-bit sources already at
`sample_rate` and quantises anything else at about -96 dBFS, where float16 keeps 11 significant bits;
samples outside [-1, 1) are clipped and counted. A shard item is
`{"audio": int16 [T], "clip_id": int}` plus `"label": str` (the manifest's text, e.g. "a;b") when the
input has a label column.

Beside LitData's `index.json` and `chunk-*.bin`, the output folder holds `shards.json` (sample rate,
storage format, counts: what `StreamingAudioDataModule` checks), `clips.csv` (`clip_id,path[,label]`
for every listed input, so a `clip_id` leads back to its file) and `skipped.txt` (one line per file
left out with `on_error="skip"`: path, tab, reason).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import litdata
import numpy as np
import torch

from ssl_lightning.audio import AudioDecodeError, load_audio

AUDIO_SUFFIXES: tuple[str, ...] = (".wav", ".flac", ".ogg")
METADATA_FILENAME = "shards.json"
CLIPS_FILENAME = "clips.csv"
SKIPPED_FILENAME = "skipped.txt"
SHARD_FORMAT_VERSION = 1
PCM_SCALE = 32768.0
SHARD_COMMAND = "ssl-lightning shard-audio INPUT OUTPUT"
OnError = Literal["raise", "skip"]
_DECODE_ERRORS: dict[str, type[Exception]] = {
    "FileNotFoundError": FileNotFoundError,
    "AudioDecodeError": AudioDecodeError,
}


@dataclass(frozen=True)
class ClipSource:
    """One clip to shard: its `clip_id` (position in the sorted listing), file `path` and label text.

    A small object rather than a bare path string: LitData inspects string inputs as files to move around.
    """

    clip_id: int
    path: Path
    label: str | None


@dataclass(frozen=True)
class ShardReport:
    """What `shard_audio` wrote: clip counts, the files it skipped (path, reason) and the wall time."""

    output_dir: Path
    num_listed: int
    num_written: int
    skipped: tuple[tuple[Path, str], ...]
    num_truncated: int
    num_clipped: int
    elapsed_seconds: float

    @property
    def clips_per_second(self) -> float:
        """Write throughput: clips written per second of wall time."""
        return self.num_written / max(self.elapsed_seconds, 1e-9)

    def summary(self) -> str:
        """A few human-readable lines for the command line."""
        lines = [
            f"wrote {self.num_written} of {self.num_listed} clips to {self.output_dir} in "
            f"{self.elapsed_seconds:.1f} s ({self.clips_per_second:.1f} clips/s)",
            f"truncated to max_seconds: {self.num_truncated} clips; "
            f"clipped to [-1, 1): {self.num_clipped} clips",
        ]
        if self.skipped:
            lines.append(
                f"skipped {len(self.skipped)} unreadable files, listed in "
                f"{self.output_dir / SKIPPED_FILENAME}; first: {self.skipped[0][0]}: {self.skipped[0][1]}"
            )
        return "\n".join(lines)


def list_clip_sources(inputs: str | Path, split: str | None = None) -> list[ClipSource]:
    """The clips named by `inputs`, in a stable order that defines their `clip_id`.

    `inputs` is a folder, scanned recursively for .wav/.flac/.ogg files (sorted by path, no labels), or
    a CSV/TSV manifest (.tsv is tab-separated) with a `path` column (relative to the manifest's
    folder), an optional `label` column and, when `split` is given, a `split` column to filter on.
    """
    inputs = Path(inputs).absolute()
    if inputs.is_dir():
        if split is not None:
            raise ValueError(f"split={split!r} needs a manifest with a split column; {inputs} is a folder")
        paths = sorted(path for path in inputs.rglob("*") if path.suffix.lower() in AUDIO_SUFFIXES)
        if not paths:
            raise ValueError(f"no {'/'.join(AUDIO_SUFFIXES)} files found under {inputs}")
        return [ClipSource(clip_id, path, None) for clip_id, path in enumerate(paths)]
    if not inputs.is_file():
        raise FileNotFoundError(
            f"shard-audio input not found: {inputs} (expected a folder or a CSV/TSV manifest)"
        )
    return _read_manifest_sources(inputs, split)


def _read_manifest_sources(manifest: Path, split: str | None) -> list[ClipSource]:
    """Rows of a CSV/TSV manifest as ClipSources; raises naming the manifest and line on bad content."""
    delimiter = "\t" if manifest.suffix.lower() == ".tsv" else ","
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = reader.fieldnames or []
        required = ["path"] + (["split"] if split is not None else [])
        missing = [column for column in required if column not in columns]
        if missing:
            raise ValueError(
                f"manifest {manifest} lacks column(s) {missing}; its header is {columns}. A manifest needs a "
                "`path` column, optionally `label` (and `split` to select rows with --split)"
            )
        has_label = "label" in columns
        sources = []
        for line, record in enumerate(reader, start=2):
            if split is not None and record["split"] != split:
                continue
            if not record["path"]:
                raise ValueError(f"manifest {manifest} line {line}: empty path")
            label = (record["label"] or "") if has_label else None
            sources.append(ClipSource(len(sources), manifest.parent / record["path"], label))
    if not sources:
        selection = f" with split={split!r}" if split is not None else ""
        raise ValueError(f"manifest {manifest} lists no clips{selection}")
    return sources


def encode_clip(
    source: ClipSource, sample_rate: int, max_samples: int | None, log_dir: Path, on_error: OnError
) -> dict[str, Any] | None:
    """Decode one clip into a shard item `{"audio": int16 [T], "clip_id": int[, "label": str]}`.

    Runs inside LitData's worker processes. Unreadable files, truncations and clipping are appended as
    JSON lines to a per-process file in `log_dir`, which `shard_audio` gathers. An unreadable file
    returns None (LitData writes nothing) with `on_error="skip"` and raises otherwise. Decoding uses one
    thread per worker process, as DataLoader workers do.
    """
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    try:
        waveform = load_audio(source.path, sample_rate).numpy()
    except (FileNotFoundError, AudioDecodeError) as error:
        _log_event(log_dir, type(error).__name__, source.path, str(error))
        if on_error == "raise":
            raise
        return None
    if max_samples is not None and waveform.shape[0] > max_samples:
        _log_event(log_dir, "truncated", source.path, f"{waveform.shape[0]} samples")
        waveform = waveform[:max_samples]
    scaled = np.round(waveform * PCM_SCALE)
    if np.any((scaled < -PCM_SCALE) | (scaled > PCM_SCALE - 1)):
        _log_event(log_dir, "clipped", source.path, f"peak {np.abs(waveform).max():.4f}")
    item: dict[str, Any] = {
        "audio": np.clip(scaled, -PCM_SCALE, PCM_SCALE - 1).astype(np.int16),
        "clip_id": source.clip_id,
    }
    if source.label is not None:
        item["label"] = source.label
    return item


def _log_event(log_dir: Path, kind: str, path: Path, message: str) -> None:
    record = json.dumps({"kind": kind, "path": str(path), "message": message})
    with open(log_dir / f"{os.getpid()}.jsonl", "a") as handle:
        handle.write(record + "\n")


def _read_events(log_dir: Path) -> list[dict[str, str]]:
    events = []
    for log in sorted(log_dir.glob("*.jsonl")):
        events += [json.loads(line) for line in log.read_text().splitlines()]
    return events


def _run_optimize(sources: list[ClipSource], output_dir: Path, encode: partial, **kwargs: Any) -> None:
    """`litdata.optimize` with forked workers on Linux, then the caller's multiprocessing start method back.

    LitData sets the global start method (force=True) to "spawn" outside notebooks; a spawned worker
    re-imports torch, torchaudio and Lightning (seconds per worker), a forked one starts at once.
    """
    start_method = multiprocessing.get_start_method(allow_none=True)
    try:
        litdata.optimize(
            fn=encode,
            inputs=sources,
            output_dir=str(output_dir),
            start_method="fork" if sys.platform == "linux" else None,
            **kwargs,
        )
    finally:
        multiprocessing.set_start_method(start_method, force=True)


def shard_audio(
    inputs: str | Path,
    output_dir: str | Path,
    sample_rate: int = 16000,
    max_seconds: float | None = 10.0,
    chunk_bytes: str | int = "64MB",
    num_workers: int = 1,
    on_error: OnError = "raise",
    split: str | None = None,
    overwrite: bool = False,
    verbose: bool = False,
) -> ShardReport:
    """Decode the clips of `inputs` (folder or manifest, see `list_clip_sources`) into LitData shards.

    Args:
        output_dir: local folder for the shards (copy it to object storage afterwards if the training
            machines read from there: the datamodule streams s3://... URLs too).
        sample_rate: every clip is resampled to it; the datamodule must use the same rate.
        max_seconds: keep at most the first `max_seconds` of a clip (None: whole clips).
        chunk_bytes: LitData chunk size ("64MB": ~200 ten-second clips per chunk at 16 kHz).
        num_workers: decoding processes.
        on_error: "raise" stops at the first unreadable file, naming it; "skip" leaves such files out and
            lists them in the report and in `skipped.txt`.
        split: with a manifest, keep only the rows of this split.
        overwrite: replace shards already in `output_dir` (otherwise that raises FileExistsError).
        verbose: show LitData's progress output.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive or None (whole clips), got {max_seconds}")
    if num_workers < 1:
        raise ValueError(f"num_workers must be at least 1, got {num_workers}")
    if "://" in str(output_dir):
        raise ValueError(
            f"shard_audio writes to a local folder, got {output_dir}; write the shards locally, then copy "
            "the folder to object storage (e.g. `aws s3 sync`) and give its URL to StreamingAudioDataModule"
        )
    output_dir = Path(output_dir)
    if (output_dir / "index.json").exists() and not overwrite:
        raise FileExistsError(
            f"{output_dir} already holds shards (index.json); choose another output folder or pass "
            "overwrite=True (--overwrite) to replace them"
        )
    sources = list_clip_sources(inputs, split)
    max_samples = None if max_seconds is None else round(max_seconds * sample_rate)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="shard-audio-") as log_dir:
        encode = partial(
            encode_clip,
            sample_rate=sample_rate,
            max_samples=max_samples,
            log_dir=Path(log_dir),
            on_error=on_error,
        )
        try:
            _run_optimize(
                sources,
                output_dir,
                encode,
                chunk_bytes=chunk_bytes,
                num_workers=num_workers,
                mode="overwrite" if overwrite else None,
                verbose=verbose,
            )
        except RuntimeError as error:
            _raise_decode_error(_read_events(Path(log_dir)), error)
        events = _read_events(Path(log_dir))
    skipped = tuple(
        (Path(event["path"]), event["message"]) for event in events if event["kind"] in _DECODE_ERRORS
    )
    if len(skipped) == len(sources):
        (output_dir / "index.json").unlink()  # LitData's index of zero chunks: leave no shards behind
        raise ValueError(
            f"all {len(sources)} files listed by {inputs} are unreadable, "
            f"e.g. {skipped[0][0]}: {skipped[0][1]}"
        )
    index = json.loads((output_dir / "index.json").read_text())
    num_written = sum(chunk["chunk_size"] for chunk in index["chunks"])
    report = ShardReport(
        output_dir=output_dir,
        num_listed=len(sources),
        num_written=num_written,
        skipped=skipped,
        num_truncated=sum(event["kind"] == "truncated" for event in events),
        num_clipped=sum(event["kind"] == "clipped" for event in events),
        elapsed_seconds=time.perf_counter() - start,
    )
    _write_sidecars(output_dir, sources, report, sample_rate, max_seconds)
    return report


def _raise_decode_error(events: list[dict[str, str]], error: RuntimeError) -> None:
    """Re-raise a worker's decoding failure as its own exception type; other failures as they are."""
    failures = [event for event in events if event["kind"] in _DECODE_ERRORS]
    if not failures:
        raise error
    failure = failures[0]
    raise _DECODE_ERRORS[failure["kind"]](
        f"shard-audio stopped at {failure['path']}: {failure['message']}. Fix or remove the file, or pass "
        "on_error='skip' (--on-error skip) to leave unreadable files out"
    ) from error


def _write_sidecars(
    output_dir: Path,
    sources: list[ClipSource],
    report: ShardReport,
    sample_rate: int,
    max_seconds: float | None,
) -> None:
    """shards.json, clips.csv and skipped.txt next to LitData's index."""
    has_label = sources[0].label is not None
    metadata = {
        "format_version": SHARD_FORMAT_VERSION,
        "sample_rate": sample_rate,
        "dtype": "int16",
        "pcm_scale": PCM_SCALE,
        "max_seconds": max_seconds,
        "has_label": has_label,
        "num_clips": report.num_written,
        "num_skipped": len(report.skipped),
    }
    (output_dir / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2) + "\n")
    with open(output_dir / CLIPS_FILENAME, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip_id", "path"] + (["label"] if has_label else []))
        writer.writerows(
            [source.clip_id, source.path] + ([source.label] if has_label else []) for source in sources
        )
    (output_dir / SKIPPED_FILENAME).write_text(
        "".join(f"{path}\t{reason}\n" for path, reason in report.skipped)
    )


def main(argv: Sequence[str] | None = None) -> None:
    """`ssl-lightning shard-audio INPUT OUTPUT [options]`: write shards and print a summary."""
    parser = argparse.ArgumentParser(
        prog="ssl-lightning shard-audio",
        description="Decode audio files (a folder or a CSV/TSV manifest) into LitData shards for "
        "StreamingAudioDataModule.",
    )
    parser.add_argument("input", help="folder scanned for .wav/.flac/.ogg, or a manifest with path[,label]")
    parser.add_argument("output", help="local output folder for the shards")
    parser.add_argument(
        "--sample-rate", type=int, default=16000, help="resample every clip to this rate (Hz)"
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="keep at most this many seconds per clip; 0: whole clips",
    )
    parser.add_argument("--chunk-bytes", default="64MB", help="LitData chunk size, e.g. 64MB")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes")
    parser.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="unreadable files")
    parser.add_argument("--split", default=None, help="with a manifest: keep only rows of this split")
    parser.add_argument("--overwrite", action="store_true", help="replace shards already in OUTPUT")
    args = parser.parse_args(argv)
    report = shard_audio(
        args.input,
        args.output,
        sample_rate=args.sample_rate,
        max_seconds=args.max_seconds or None,
        chunk_bytes=args.chunk_bytes,
        num_workers=args.workers,
        on_error=args.on_error,
        split=args.split,
        overwrite=args.overwrite,
        verbose=True,
    )
    print(report.summary())
