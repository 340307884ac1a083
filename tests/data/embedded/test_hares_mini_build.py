"""Tests for the hares-mini builder: layout, manifests, determinism, markers, locking and errors."""

import csv
import hashlib
import json
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from ssl_lightning.data.embedded.hares_mini import (
    build,
    ensure_hares_mini,
    generate_clip,
    hares_mini_dir,
    speech,
)

SMALL = {"train": 4, "valid": 2, "test": 2}
TASKS = ["env_events", "env_scenes", "music_pitch"]


def read_rows(task_dir: Path) -> list[dict]:
    with open(task_dir / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path (lock files excluded)."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith(".lock")
    }


@pytest.fixture(scope="module")
def small_build(tmp_path_factory) -> Path:
    return ensure_hares_mini(tmp_path_factory.mktemp("a"), TASKS, progress=False, split_sizes=SMALL)


def test_layout_manifest_and_wav_format(small_build):
    assert small_build.name == "hares_mini_v1-train4-valid2-test2"
    rows = read_rows(small_build / "env_events")
    assert [row["path"] for row in rows[:5]] == [f"train/{i:05d}.wav" for i in range(4)] + ["valid/00000.wav"]
    assert [row["split"] for row in rows] == ["train"] * 4 + ["valid"] * 2 + ["test"] * 2
    assert [row["label"] for row in rows[:4]] == ["siren", "alarm_beeps", "engine_hum", "rain"]
    info = soundfile.info(str(small_build / "env_events" / rows[0]["path"]))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 32000, "PCM_16")
    marker = json.loads((small_build / "env_events" / ".complete").read_text())
    assert marker == {
        "version": "hares_mini_v1",
        "seed": build.SEED,
        "sample_rate": 16000,
        "split_sizes": SMALL,
    }


def test_multi_label_manifest_joins_tags(small_build):
    labels = [row["label"].split(";") for row in read_rows(small_build / "env_scenes")]
    assert all(1 <= len(tags) <= 3 for tags in labels)
    assert any(len(tags) > 1 for tags in labels)


def test_splits_do_not_overlap(small_build):
    rows = read_rows(small_build / "music_pitch")
    hashes = [
        hashlib.sha256((small_build / "music_pitch" / row["path"]).read_bytes()).hexdigest() for row in rows
    ]
    assert len(set(hashes)) == len(rows) == 8


def test_clip_regenerates_identically_and_indices_differ(small_build):
    stored, _ = soundfile.read(str(small_build / "env_scenes" / "valid" / "00001.wav"), dtype="float32")
    waveform, labels = generate_clip("env_scenes", "valid", 1)
    np.testing.assert_allclose(stored, waveform, atol=1.0 / 32767)
    assert ";".join(labels) == read_rows(small_build / "env_scenes")[5]["label"]
    np.testing.assert_array_equal(waveform, generate_clip("env_scenes", "valid", 1)[0])
    assert not np.allclose(waveform, generate_clip("env_scenes", "valid", 2)[0])
    assert not np.allclose(waveform, generate_clip("env_scenes", "test", 1)[0])


def test_two_builds_are_byte_identical_also_in_parallel(small_build, tmp_path):
    other = ensure_hares_mini(tmp_path, TASKS, progress=False, split_sizes=SMALL, num_workers=2)
    assert digest(other) == digest(small_build)


def test_second_call_is_a_no_op(small_build):
    before = {p: p.stat().st_mtime_ns for p in small_build.rglob("*.wav")}
    start = time.perf_counter()
    assert ensure_hares_mini(small_build.parent, TASKS, progress=False, split_sizes=SMALL) == small_build
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in small_build.rglob("*.wav")} == before


def test_interrupted_or_stale_build_is_redone(tmp_path):
    version_dir = ensure_hares_mini(tmp_path, ["env_events"], progress=False, split_sizes=SMALL)
    task_dir = version_dir / "env_events"
    reference = digest(task_dir)
    (task_dir / ".complete").unlink()  # interrupted before the marker
    (task_dir / "train" / "00000.wav").write_bytes(b"half-written")
    (version_dir / ".env_events.partial").mkdir()  # leftovers of a killed builder
    ensure_hares_mini(tmp_path, ["env_events"], progress=False, split_sizes=SMALL)
    assert digest(task_dir) == reference and not (version_dir / ".env_events.partial").exists()
    (task_dir / ".complete").write_text('{"version": "hares_mini_v0"}')  # older generator
    ensure_hares_mini(tmp_path, ["env_events"], progress=False, split_sizes=SMALL)
    assert digest(task_dir) == reference


def test_overridden_sizes_never_touch_the_full_build(tmp_path):
    assert hares_mini_dir(tmp_path) == tmp_path / "hares_mini_v1"
    assert (
        hares_mini_dir(tmp_path, {"train": 2, "valid": 1, "test": 1})
        == tmp_path / "hares_mini_v1-train2-valid1-test1"
    )


def test_default_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SSL_LIGHTNING_DATA", str(tmp_path))
    assert hares_mini_dir() == tmp_path / "hares_mini_v1"
    monkeypatch.delenv("SSL_LIGHTNING_DATA")
    assert hares_mini_dir() == Path.home() / ".cache" / "ssl_lightning" / "hares_mini_v1"


def test_concurrent_caller_waits_for_the_lock(tmp_path):
    """While another process holds the task's lock, a caller blocks; it then finds the build done."""
    version_dir = hares_mini_dir(tmp_path, SMALL)
    version_dir.mkdir(parents=True)
    finished = threading.Event()

    def call():
        ensure_hares_mini(tmp_path, ["env_events"], progress=False, split_sizes=SMALL)
        finished.set()

    with build._file_lock(version_dir / ".env_events.lock"):
        worker = threading.Thread(target=call)
        worker.start()
        assert not finished.wait(0.5)
    worker.join(30)
    assert finished.is_set() and (version_dir / "env_events" / ".complete").exists()


def _build_in_child(root: str) -> None:
    ensure_hares_mini(root, TASKS, progress=False, split_sizes=SMALL, num_workers=0)


def test_racing_processes_build_once_and_correctly(small_build, tmp_path):
    """Two processes (like two DDP ranks) build the same root at the same time."""
    context = multiprocessing.get_context("fork")
    racers = [context.Process(target=_build_in_child, args=(str(tmp_path),)) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)
    assert [racer.exitcode for racer in racers] == [0, 0]
    assert digest(hares_mini_dir(tmp_path, SMALL)) == digest(small_build)


def test_pool_build_is_unlabeled(tmp_path):
    version_dir = ensure_hares_mini(
        tmp_path, ["pool"], progress=False, split_sizes={"train": 3, "valid": 1, "test": 1}
    )
    rows = read_rows(version_dir / "pool")
    assert [(row["split"], row["label"]) for row in rows] == [("train", "")] * 3 + [("valid", "")]


def test_unknown_task_and_bad_sizes_raise(tmp_path):
    with pytest.raises(ValueError, match="'env_event'.*pool"):
        ensure_hares_mini(tmp_path, ["env_event"], progress=False)
    with pytest.raises(ValueError, match="missing \\['test'\\]"):
        ensure_hares_mini(tmp_path, ["env_events"], progress=False, split_sizes={"train": 2, "valid": 2})
    with pytest.raises(ValueError, match="invalid"):
        ensure_hares_mini(
            tmp_path, ["env_events"], progress=False, split_sizes={"train": 0, "valid": 2, "test": 2}
        )


def test_unwritable_root_says_how_to_fix(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="SSL_LIGHTNING_DATA"):
        ensure_hares_mini(blocker, ["env_events"], progress=False, split_sizes=SMALL)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_speech_failure_is_loud_and_leaves_no_complete_task(tmp_path, monkeypatch, num_workers):
    def broken(*args, **kwargs):
        raise RuntimeError("eSpeak NG library not found")

    monkeypatch.setattr(speech, "keyword_clip", broken)
    with pytest.raises(RuntimeError, match="speech_keywords/train/0.*eSpeak NG library not found"):
        ensure_hares_mini(
            tmp_path, ["speech_keywords"], progress=False, split_sizes=SMALL, num_workers=num_workers
        )
    version_dir = hares_mini_dir(tmp_path, SMALL)
    assert (
        not (version_dir / "speech_keywords").exists()
        and not (version_dir / ".speech_keywords.partial").exists()
    )
