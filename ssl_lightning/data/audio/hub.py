"""Labelled audio from Hugging Face `datasets`: a hub id (at a revision), a `save_to_disk` folder, or an
in-memory `DatasetDict` / dict of `Dataset`s, served like the on-disk layouts.

The audio column is read undecoded (`Audio(decode=False)`: the stored bytes or file path) and decoded here
with soundfile, so no FFmpeg / torchcodec is needed (wav, flac, ogg and mp3: what libsndfile reads). A
datamodule maps its table's columns to label names in `hub_splits` and returns `HubSplit`s; the shared
base (`AudioClassificationDataModule`) serves them as `HubAudioDataset`s.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
import torch
import torchaudio.functional
from einops import reduce
from torch import Tensor

from ssl_lightning.audio import AudioDecodeError
from ssl_lightning.data.manifest import LabelType, ManifestAudioDataset, Mode, OnError

PARQUET = "refs/convert/parquet"
"""The hub's automatic parquet conversion of a data set: the revision that loads script-based data sets
(`google/speech_commands`, NSynth, MagnaTagATune copies) with `datasets` >= 4, which runs no scripts."""


@dataclass(frozen=True)
class HubSource:
    """Where a data set lives on the hub: `path` (a hub id, or a local `save_to_disk` / data folder),
    `revision` (a commit sha to pin, a branch such as `PARQUET`, or None for the default branch), `name`
    (the config) and the audio column. The library's defaults name branches (commit shas cannot be looked
    up offline); pin a commit for a reproducible report with `HubSource(path, revision=<sha>)`."""

    path: str
    revision: str | None = None
    name: str | None = None
    audio_column: str = "audio"


HubInput = str | HubSource | Mapping[str, Any]
"""What a datamodule's `hub` argument takes: a hub id or folder (str), a `HubSource`, or the splits
themselves (a `datasets.DatasetDict` or a dict of split name -> `datasets.Dataset`)."""


@dataclass
class HubSplit:
    """Rows `rows` of one table of a hub data set, with the label names of each row.

    Attributes:
        table: the `datasets.Dataset` (its audio column is read undecoded).
        rows: the row indices of this split, in order.
        labels: the label names of every selected row (empty tuples for unlabeled data).
        audio_column: the column holding the audio.
        where: a name for messages, e.g. `google/speech_commands[train]`.
    """

    table: Any
    rows: Sequence[int]
    labels: Sequence[tuple[str, ...]]
    audio_column: str = "audio"
    where: str = "hub"

    def __post_init__(self) -> None:
        if len(self.rows) != len(self.labels):
            raise ValueError(f"{self.where}: {len(self.rows)} rows but {len(self.labels)} label tuples")


HubPart = tuple[Any, Sequence[int], Sequence[tuple[str, ...]]]
"""One split of a hub copy before it is served: (table, row indices, label names of each row)."""


def hub_splits_of(
    parts: Mapping[str, HubPart], audio_column: str, where: str, hint: str = ""
) -> dict[str, HubSplit]:
    """The `HubSplit` of every split of `parts`, named `<where>[<split>]` in messages.

    Raises:
        ValueError: some split has no row (the message names them, then `hint`).
    """
    empty = [split for split, (_, rows, _) in parts.items() if not len(rows)]
    if empty:
        raise ValueError(f"{where}: split(s) {empty} have no row{hint}")
    return {
        split: HubSplit(table, rows, labels, audio_column, f"{where}[{split}]")
        for split, (table, rows, labels) in parts.items()
    }


def load_hub(hub: HubInput, default: HubSource | None = None) -> tuple[dict[str, Any], str]:
    """The splits of `hub` as `{split: datasets.Dataset}` with the audio column undecoded, and the audio
    column's name.

    A str equal to `default.path` uses `default`'s pinned revision and config; another str is a hub id (or a
    local folder) at its default branch. A folder written by `save_to_disk` is loaded from disk.

    Raises:
        ValueError: the splits lack the audio column (the message lists the columns).
    """
    import datasets

    if isinstance(hub, str):
        hub = default if default is not None and hub == default.path else HubSource(hub)
    if isinstance(hub, HubSource):
        column = hub.audio_column
        if (Path(hub.path) / "dataset_dict.json").is_file():
            tables = datasets.load_from_disk(hub.path)
        else:
            tables = datasets.load_dataset(hub.path, hub.name, revision=hub.revision)
    else:
        column = default.audio_column if default is not None else "audio"
        tables = hub
    out = {}
    for split, table in dict(tables).items():
        if column not in table.column_names:
            raise ValueError(
                f"hub split {split!r} has no audio column {column!r}; its columns are {table.column_names}. "
                "Pass a HubSource with audio_column set"
            )
        out[split] = table.cast_column(column, datasets.Audio(decode=False))
    return out, column


def hub_column(table: Any, column: str, where: str) -> list:
    """The values of `column` in `table`, or a ValueError naming the columns there are."""
    if column not in table.column_names:
        raise ValueError(f"{where} has no column {column!r}; its columns are {table.column_names}")
    return table[column]


def decode_cell(cell: Mapping[str, Any] | None, where: str) -> tuple[Tensor, int]:
    """(mono float32 waveform [T], sample rate) of one undecoded `Audio` cell (`bytes`, else `path`).

    Raises AudioDecodeError naming `where` when the cell is empty, unreadable or not finite.
    """
    data = None if cell is None else cell.get("bytes")
    source = io.BytesIO(data) if data else (None if cell is None else cell.get("path"))
    if source is None:
        raise AudioDecodeError(f"{where}: the audio cell holds neither bytes nor a path")
    try:
        samples, rate = soundfile.read(source, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, TypeError) as error:
        raise AudioDecodeError(
            f"{where}: cannot decode its audio ({error}); soundfile reads wav, flac, ogg and mp3, so "
            "convert other formats first"
        ) from error
    if samples.shape[0] == 0 or not np.isfinite(samples).all():
        raise AudioDecodeError(f"{where}: the audio is empty or holds non-finite samples")
    return reduce(torch.from_numpy(samples), "t c -> t", "mean"), int(rate)


class HubAudioDataset(ManifestAudioDataset):
    """`ManifestAudioDataset` (same modes, items and `on_error`) over the rows of a `HubSplit`."""

    def __init__(
        self,
        split: HubSplit,
        classes: Sequence[str],
        label_type: LabelType,
        sample_rate: int = 16000,
        num_samples: int | None = None,
        mode: Mode = "random_crop",
        on_error: OnError = "raise",
        crops: int | None = None,
    ) -> None:
        feature = split.table.features.get(split.audio_column)
        if getattr(feature, "decode", False):  # never let `datasets` decode (it would need torchcodec)
            undecoded = split.table.cast_column(split.audio_column, type(feature)(decode=False))
            split = replace(split, table=undecoded)
        self.split = split
        self._rows = np.asarray(split.rows, dtype=np.int64)
        names = [f"{split.where} row {row}" for row in self._rows]
        items = list(zip(names, split.labels, strict=True))
        super().__init__(items, classes, label_type, sample_rate, num_samples, mode, on_error, crops)

    def read(self, clip: int) -> Tensor:
        row = int(self._rows[clip])
        where = f"{self.split.where} row {row}"
        waveform, rate = decode_cell(self.split.table[row][self.split.audio_column], where)
        if rate == self.sample_rate:
            return waveform
        return torchaudio.functional.resample(waveform, orig_freq=rate, new_freq=self.sample_rate)

    def probe(self, clip: int) -> int:
        return self.read(clip).numel()


def hub_split_tables(tables: Mapping[str, Any], where: str) -> dict[str, Any] | None:
    """The tables of a hub copy's own splits as train / valid / test (valid may be named `validation`), or
    None when it names neither valid nor test (one table, e.g. the `train` a single pushed table loads as).

    Raises:
        ValueError: it names some of the three splits but not all, naming the splits it has.
    """
    valid = [name for name in ("valid", "validation") if name in tables]
    if not valid and "test" not in tables:
        return None
    if "train" not in tables or "test" not in tables or len(valid) != 1:
        raise ValueError(
            f"{where} must have the splits train, valid (or validation) and test, or one table; it has "
            f"{list(tables)}"
        )
    return {"train": tables["train"], "valid": tables[valid[0]], "test": tables["test"]}


def merged_table(tables: Mapping[str, Any]) -> Any:
    """All of a hub copy's splits as one `datasets.Dataset` (in split-name order), for a data set whose
    split the library makes itself."""
    import datasets

    return datasets.concatenate_datasets([tables[name] for name in sorted(tables)])
