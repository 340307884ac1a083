"""Generate hares-mini on first use: seeded, cached, safe against concurrent callers.

Layout under `<root>/hares_mini_v1/` (root: `SSL_LIGHTNING_DATA`, else `~/.cache/ssl_lightning`):

    <task>/{train,valid,test}/<index>.wav   16-bit PCM mono, 16 kHz
    <task>/manifest.csv                     path,split,label (path relative to <task>/; labels ';'-joined)
    <task>/.complete                        JSON marker (version, seed, sizes), written last
    pool/{train,valid}/<index>.wav + manifest.csv + .complete   (label empty)

Clip `index` of `split` of a task is generated from its own seed (SEED, task, split, index), so any
clip can be regenerated alone and two builds are byte-identical. A task is built in a hidden
`.<task>.partial/` folder that is renamed into place once complete; an interrupted build is redone
from scratch. A per-task `fcntl` lock makes concurrent callers (DDP ranks, parallel test
processes) wait for one builder. Builds with overridden split sizes (tests, smoke runs) go to their
own folder (`hares_mini_v1-train4-valid4-test4`) and never touch the full one.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import multiprocessing
import os
import shutil
import zlib
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile
from tqdm.auto import tqdm

from ssl_lightning.data.embedded.hares_mini.registry import (
    POOL,
    SAMPLE_RATE,
    SPLITS,
    TASKS,
    Example,
    PoolSpec,
    TaskSpec,
    get_spec,
)

VERSION = "hares_mini_v1"
"""Folder name of the generated data; bump it whenever generation changes."""
SEED = 20240917
DATA_ENV = "SSL_LIGHTNING_DATA"
MANIFEST = "manifest.csv"
MARKER = ".complete"
_PARALLEL_MIN_CLIPS = 200
"""Builds with fewer clips run in-process (starting workers would cost more than it saves)."""


def default_root() -> Path:
    """`$SSL_LIGHTNING_DATA`, else `~/.cache/ssl_lightning`."""
    return Path(os.environ.get(DATA_ENV) or Path.home() / ".cache" / "ssl_lightning").expanduser()


def resolve_split_sizes(spec: TaskSpec | PoolSpec, split_sizes: Mapping[str, int] | None) -> dict[str, int]:
    """Clips per split of `spec`: its own sizes, or `split_sizes` (which must cover all its splits)."""
    if split_sizes is None:
        return dict(spec.split_sizes)
    missing = [split for split in spec.split_sizes if split not in split_sizes]
    bad = {split: n for split, n in split_sizes.items() if not (isinstance(n, int) and n >= 1)}
    if missing or bad or not set(split_sizes) <= set(SPLITS):
        raise ValueError(
            f"split_sizes must map each of {list(SPLITS)} to a positive int, got {dict(split_sizes)} "
            f"(for {spec.name!r}: missing {missing}, invalid {bad})"
        )
    return {split: split_sizes[split] for split in spec.split_sizes}


def hares_mini_dir(root: str | Path | None = None, split_sizes: Mapping[str, int] | None = None) -> Path:
    """Folder of the generated benchmark: `<root>/hares_mini_v1`, or a sibling named after the sizes
    when `split_sizes` overrides them (e.g. `hares_mini_v1-train4-valid4-test4`)."""
    root = default_root() if root is None else Path(root).expanduser()
    if split_sizes is None:
        return root / VERSION
    return root / "-".join(
        [VERSION, *(f"{split}{split_sizes[split]}" for split in SPLITS if split in split_sizes)]
    )


def clip_rng(name: str, split: str, index: int) -> np.random.Generator:
    """The generator of clip `index` of `split` of task `name`: seeded by (SEED, task, split, index)."""
    return np.random.default_rng([SEED, zlib.crc32(name.encode()), SPLITS.index(split), index])


def generate_clip(name: str, split: str, index: int) -> Example:
    """Clip `index` of `split` of task `name` (or "pool"), exactly as the build writes it (before
    16-bit quantisation): (float32 waveform [clip_seconds * 16000], class names).

    Raises a RuntimeError naming the clip when its generator fails or returns a bad waveform.
    """
    spec = get_spec(name)
    num_samples = round(spec.clip_seconds * SAMPLE_RATE)
    where = f"hares-mini {name}/{split}/{index}"
    try:
        waveform, labels = spec.make_clip(clip_rng(name, split, index), index, SAMPLE_RATE, num_samples)
    except Exception as error:
        raise RuntimeError(f"{where}: generation failed: {type(error).__name__}: {error}") from error
    if waveform.shape != (num_samples,) or waveform.dtype != np.float32:
        raise RuntimeError(
            f"{where}: expected float32 [{num_samples}], got {waveform.dtype} {waveform.shape}"
        )
    if not np.isfinite(waveform).all() or np.abs(waveform).max() > 1.0:
        raise RuntimeError(f"{where}: waveform is non-finite or leaves [-1, 1]")
    return waveform, labels


def _clip_path(split: str, index: int) -> str:
    return f"{split}/{index:05d}.wav"


def _write_clip(job: tuple[str, str, int, str]) -> tuple[str, ...]:
    """Generate one clip and write it as 16-bit wav; returns its class names (runs in workers).

    The wav is encoded in memory and written in one go: libsndfile's own file output fsyncs every
    file, which makes a build several times slower on some file systems."""
    name, split, index, path = job
    waveform, labels = generate_clip(name, split, index)
    encoded = io.BytesIO()
    soundfile.write(encoded, waveform, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    Path(path).write_bytes(encoded.getvalue())
    return labels


def _marker(sizes: Mapping[str, int]) -> dict:
    return {"version": VERSION, "seed": SEED, "sample_rate": SAMPLE_RATE, "split_sizes": dict(sizes)}


def is_complete(task_dir: Path, sizes: Mapping[str, int]) -> bool:
    """Whether `task_dir` holds a finished build of this version with these split sizes."""
    try:
        return json.loads((task_dir / MARKER).read_text()) == _marker(sizes)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive `fcntl` lock on `path` (created if needed), released on exit or process death."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _limit_threads() -> None:
    """Worker initialiser: one torch thread per worker process (the speech resampler uses torch)."""
    import torch

    torch.set_num_threads(1)


def _build(
    spec: TaskSpec | PoolSpec,
    sizes: Mapping[str, int],
    version_dir: Path,
    executor: Executor | None,
    progress: bool,
) -> None:
    """Generate `spec` into `.<name>.partial/` and rename it to `<name>/` once manifest and marker exist
    (the partial folder is removed if generation fails)."""
    partial = version_dir / f".{spec.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _generate_into(partial, spec, sizes, executor, progress)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    task_dir = version_dir / spec.name
    shutil.rmtree(task_dir, ignore_errors=True)
    partial.rename(task_dir)


def _generate_into(
    partial: Path,
    spec: TaskSpec | PoolSpec,
    sizes: Mapping[str, int],
    executor: Executor | None,
    progress: bool,
) -> None:
    """Write every clip, then the manifest, then the completion marker into `partial`."""
    jobs = []
    for split, size in sizes.items():
        (partial / split).mkdir(parents=True)
        jobs += [(spec.name, split, index, str(partial / _clip_path(split, index))) for index in range(size)]
    results = executor.map(_write_clip, jobs, chunksize=8) if executor else map(_write_clip, jobs)
    rows = [
        (_clip_path(split, index), split, ";".join(labels))
        for (_, split, index, _), labels in zip(
            jobs,
            tqdm(results, total=len(jobs), desc=f"hares-mini {spec.name}", unit="clip", disable=not progress),
            strict=True,
        )
    ]
    with open(partial / MANIFEST, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "split", "label"])
        writer.writerows(rows)
    (partial / MARKER).write_text(json.dumps(_marker(sizes), sort_keys=True) + "\n")


def _num_workers(num_workers: int | None, num_clips: int) -> int:
    if num_workers is not None:
        return num_workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return 0 if num_clips < _PARALLEL_MIN_CLIPS else min(cores, 8)


def ensure_hares_mini(
    root: str | Path | None = None,
    tasks: Sequence[str] | None = None,
    *,
    progress: bool = True,
    split_sizes: Mapping[str, int] | None = None,
    num_workers: int | None = None,
) -> Path:
    """Generate the hares-mini tasks that are missing or incomplete; returns the benchmark folder.

    Args:
        root: parent folder (default `$SSL_LIGHTNING_DATA`, else `~/.cache/ssl_lightning`).
        tasks: task names and/or "pool" (default: every task and the pool).
        progress: show a progress bar per task being generated.
        split_sizes: override the clips per split for every task, e.g. {"train": 4, "valid": 4,
            "test": 4} for tests; such builds live in their own folder (see `hares_mini_dir`).
        num_workers: generator processes (default: the available cores for large builds, none for
            small ones; 0 generates in this process).

    Returns:
        `hares_mini_dir(root, split_sizes)`, holding one folder per task.
    """
    specs = [get_spec(name) for name in ([*TASKS, POOL.name] if tasks is None else tasks)]
    version_dir = hares_mini_dir(root, split_sizes)
    todo = []
    for spec in specs:
        sizes = resolve_split_sizes(spec, split_sizes)
        if not is_complete(version_dir / spec.name, sizes):
            todo.append((spec, sizes))
    if not todo:
        return version_dir
    try:
        version_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            f"cannot create the hares-mini folder {version_dir}: {error}. "
            f"Pass root= a writable folder or set {DATA_ENV}"
        ) from error
    workers = _num_workers(num_workers, sum(sum(sizes.values()) for _, sizes in todo))
    with contextlib.ExitStack() as stack:
        executor = None
        if workers > 0:
            context = multiprocessing.get_context(
                "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            )
            executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads)
            # on an error, drop the queued clips instead of generating them all before raising
            stack.callback(executor.shutdown, cancel_futures=True)
        for spec, sizes in todo:
            with _file_lock(version_dir / f".{spec.name}.lock"):
                if not is_complete(version_dir / spec.name, sizes):
                    _build(spec, sizes, version_dir, executor, progress)
    return version_dir
