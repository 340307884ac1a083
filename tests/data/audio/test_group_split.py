"""Tests for the group-aware hash split and the split list files (`<split>\\t<item id>`) of
ssl_lightning/data/audio/group_split.py, on small worked examples."""

import hashlib
from pathlib import Path

import pytest

from ssl_lightning.data.audio.group_split import (
    assigned_clips,
    hash_fraction,
    hash_split,
    read_split_list,
    write_split_list,
)
from ssl_lightning.data.audio.hub import HubSplit

FRACTIONS = {"train": 0.8, "valid": 0.1, "test": 0.1}


def restated_fraction(seed: int, group: str) -> float:
    """The documented rule restated: sha256 of f"{seed}:{group}", first 8 bytes big-endian over 2**64."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{group}".encode()).digest()[:8], "big") / 2**64


def restated_split(seed: int, group: str) -> str:
    position = restated_fraction(seed, group)
    return "train" if position < 0.8 else "valid" if position < 0.9 else "test"


def touch(root: Path, *items: str) -> None:
    for item in items:
        (root / item).parent.mkdir(parents=True, exist_ok=True)
        (root / item).write_bytes(b"")


def test_hash_fraction_is_the_documented_sha256_rule():
    """sha256(b"0:a") starts 9df3c5fab8ef8fe7: 0x9df3c5fab8ef8fe7 / 2**64 = 0.6170..."""
    assert hash_fraction(0, "a") == 0x9DF3C5FAB8EF8FE7 / 2**64 == pytest.approx(0.61700, abs=1e-5)
    assert all(hash_fraction(s, f"g{i}") == restated_fraction(s, f"g{i}") for s in (0, 7) for i in range(50))
    assert hash_fraction(0, "a") != hash_fraction(1, "a")


def test_hash_split_follows_the_fraction_edges_and_the_shares():
    groups = [f"group-{i}" for i in range(5000)]
    splits = [hash_split(group, FRACTIONS, seed=0) for group in groups]
    assert splits == [restated_split(0, group) for group in groups]
    for split, share in FRACTIONS.items():
        assert abs(splits.count(split) / 5000 - share) < 0.02
    assert hash_split("a", {"train": 0.65, "test": 0.35}, 0) == "train"  # 0.6170... < 0.65
    assert hash_split("a", {"train": 0.6, "test": 0.4}, 0) == "test"
    assert hash_split("a", {"train": 0.5, "valid": 0.15, "test": 0.35}, 0) == "valid"


def test_adding_groups_never_moves_the_others():
    """A split of 40 groups, then of those 40 among 400 more, and with another seed: the first seed keeps
    every one of the 40 where it was; the other seed moves some."""
    few = [f"speaker-{i}" for i in range(40)]
    many = [f"speaker-{i}" for i in range(440)][::-1]
    alone = {group: hash_split(group, FRACTIONS, 3) for group in few}
    among = {group: hash_split(group, FRACTIONS, 3) for group in many}
    assert alone == {group: among[group] for group in few}
    assert alone != {group: hash_split(group, FRACTIONS, 4) for group in few}


def test_a_list_file_round_trip(tmp_path):
    """The written file, byte for byte: sorted `<split>\\t<path under root>` lines; read back the same."""
    root = tmp_path / "data"
    items = ("b/2.wav", "a/1.wav", "a/3.wav", "c/4.wav")
    touch(root, *items)
    splits = {
        "train": [(root / "b/2.wav", ("x",)), (root / "a/1.wav", ("y",))],
        "valid": [(root / "c/4.wav", ("x",))],
        "test": [(root / "a/3.wav", ("y",))],
    }
    write_split_list(tmp_path / "split.txt", splits, root)
    assert (tmp_path / "split.txt").read_text() == (
        "test\ta/3.wav\ntrain\ta/1.wav\ntrain\tb/2.wav\nvalid\tc/4.wav\n"
    )
    assignment = read_split_list(tmp_path / "split.txt", items)
    assert assignment == {"a/3.wav": "test", "a/1.wav": "train", "b/2.wav": "train", "c/4.wav": "valid"}


def test_write_refuses_hub_splits(tmp_path):
    with pytest.raises(ValueError, match="a split file names audio files under root="):
        write_split_list(tmp_path / "split.txt", {"train": HubSplit(None, [], [])}, tmp_path)
    with pytest.raises(ValueError, match="a split file names audio files under root="):
        write_split_list(tmp_path / "split.txt", {"train": []}, None)
    assert not (tmp_path / "split.txt").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("training\ta.wav\n", r"line 1: expected '<split>\\t<item id>' .*, got 'training\\ta.wav'"),
        ("train a.wav\n", "line 1: expected"),
        ("train\ta.wav\ttest\n", "line 1: expected"),
        ("train\ta.wav\n\n", "line 2: expected"),
        ("train\ta.wav\ntest\tz.wav\n", "line 2: 'z.wav' is not an item"),
        ("train\ta.wav\ntest\tb.wav\nvalid\ta.wav\n", "line 3: 'a.wav' is listed twice"),
    ],
)
def test_bad_lines_name_the_file_and_line(tmp_path, text, message):
    (tmp_path / "split.txt").write_text(text)
    with pytest.raises(ValueError, match=f"split.txt {message}"):
        read_split_list(tmp_path / "split.txt", {"a.wav", "b.wav"})


def test_a_missing_list_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"split file not found: {tmp_path / 'none.txt'}"):
        read_split_list(tmp_path / "none.txt", {"a.wav"})


def test_assigned_clips_keep_the_label_order_and_report_missing_audio(tmp_path):
    labels = {"c.wav": "x", "a.wav": "y", "b.wav": "x", "d.wav": "y"}
    assignment = {"b.wav": "train", "a.wav": "test", "c.wav": "train"}  # d.wav: in no split
    touch(tmp_path, *labels)
    splits = assigned_clips(assignment, labels, tmp_path, "raise", "Demo")
    assert splits == {
        "train": [(tmp_path / "c.wav", ("x",)), (tmp_path / "b.wav", ("x",))],
        "valid": [],
        "test": [(tmp_path / "a.wav", ("y",))],
    }
    (tmp_path / "c.wav").unlink()
    with pytest.raises(FileNotFoundError, match=r"1 of 3 clips of Demo .*\['c.wav'\]"):
        assigned_clips(assignment, labels, tmp_path, "raise", "Demo")
    with pytest.warns(UserWarning, match="1 of 3 clips of Demo"):
        splits = assigned_clips(assignment, labels, tmp_path, "skip", "Demo")
    assert splits["train"] == [(tmp_path / "b.wav", ("x",))]
