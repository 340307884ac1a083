"""Group-aware, seeded, deterministic splits that the library must make when a data set has no canonical
split, and the split list files that record them.

The hash rule puts a whole group (a speaker, a recording location, a clip) into one split by a hash of
`f"{split_seed}:{group}"` (sha256, not Python's `hash`), so it is the same on every machine and run, and
adding or losing groups never moves the others. A split list file holds one `<split>\t<item id>` line per
clip (split one of train / valid / test, item id the clip's audio path under the data set's root), sorted:
`write_split_list` writes the split in use so a run can ship or record it, `read_split_list` reads it back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from itertools import accumulate
from pathlib import Path

from ssl_lightning.data.audio.datamodule import Clip, check_missing
from ssl_lightning.data.audio.hub import HubSplit
from ssl_lightning.data.manifest import OnError

SPLITS = ("train", "valid", "test")


def hash_fraction(seed: int, group: str) -> float:
    """Where `group` falls in [0, 1): the first 8 bytes of sha256(f"{seed}:{group}") over 2**64, the same on
    every machine and run (unlike `hash()`) and independent of every other group."""
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split(group: str, fractions: Mapping[str, float], seed: int) -> str:
    """The split of `group`: the first of `fractions` (split -> share, in order, summing to 1) whose
    cumulative share exceeds `hash_fraction(seed, group)`."""
    position, names = hash_fraction(seed, group), list(fractions)
    edges = accumulate(fractions.values())
    return next((name for name, edge in zip(names, edges, strict=True) if position < edge), names[-1])


def read_split_list(path: Path, items: Collection[str]) -> dict[str, str]:
    """Item id -> split, read from the list file `path` (`<split>\t<item id>` per line, ids as `items`
    names them). Items the file does not list are left out of every split.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a line is not `<split>\t<item id>`, names another split than train/valid/test, an item
            not in `items`, or an item listed before (the message names the line).
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"split file not found: {path}; write one with write_split_file(path) or pass split_file=None"
        )
    assignment: dict[str, str] = {}
    for line, text in enumerate(path.read_text().splitlines(), start=1):
        fields = text.split("\t")
        if len(fields) != 2 or fields[0] not in SPLITS:
            raise ValueError(
                f"{path} line {line}: expected '<split>\\t<item id>' with split in {SPLITS}, got {text!r}"
            )
        split, item = fields
        if item not in items:
            raise ValueError(f"{path} line {line}: {item!r} is not an item of the data set read from root")
        if item in assignment:
            raise ValueError(f"{path} line {line}: {item!r} is listed twice")
        assignment[item] = split
    return assignment


def write_split_list(
    path: str | Path, splits: Mapping[str, Sequence[Clip] | HubSplit], root: Path | None
) -> None:
    """Write `splits` as a list file: `<split>\t<item id>` lines, sorted, where the item id is the clip's
    path under `root` (what `read_split_list` reads back).

    Raises:
        ValueError: the splits come from a hub copy (no files under a root to name).
    """
    if root is None or any(isinstance(clips, HubSplit) for clips in splits.values()):
        raise ValueError(
            "a split file names audio files under root=; the hub split is set by split_seed= alone"
        )
    lines = sorted(
        f"{split}\t{audio.relative_to(root).as_posix()}"
        for split, clips in splits.items()
        for audio, _ in clips
    )
    Path(path).write_text("".join(f"{line}\n" for line in lines))


def assigned_clips(
    assignment: Mapping[str, str], labels: Mapping[str, str], root: Path, on_error: OnError, where: str
) -> dict[str, list[Clip]]:
    """The clips of every split, in the order of `labels` (item id, a path under `root` -> label name), the
    split of each from `assignment` (items it lacks are left out); items whose audio is missing are
    reported (`check_missing`, as from `where`) and left out. The order does not depend on `assignment`'s,
    so a split read back from a split file serves its clips as the split that wrote it."""
    missing = [item for item in assignment if not (root / item).is_file()]
    check_missing(missing, len(assignment), where, on_error, f"looked under {root}")
    absent = set(missing)
    return {
        split: [
            (root / item, (labels[item],))
            for item in labels
            if assignment.get(item) == split and item not in absent
        ]
        for split in SPLITS
    }


class SplitListWriter:
    """Mixin of an `AudioClassificationDataModule` subclass with a `root` whose split a list file can
    record: `write_split_file`, and read back: `split_file=`."""

    def keep_split_source(self, split_file: str | None, split_seed: int) -> None:
        """Keep `split_file` (expanded) and `split_seed` (the seed of the library's own split); call it after
        setting `root`.

        Raises:
            ValueError: a split file with hub= (it names files under root).
        """
        if split_file is not None and self.root is None:
            raise ValueError("split_file= names files under root=; it cannot be used with hub=")
        self.split_file = None if split_file is None else Path(split_file).expanduser()
        self.split_seed = split_seed

    def write_split_file(self, path: str | Path) -> None:
        """Write the split in use (after `setup`) as a list file to ship or record it; `split_file=` reads
        it back."""
        self.setup()
        write_split_list(path, self._splits, self.root)
