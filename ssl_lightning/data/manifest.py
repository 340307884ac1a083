"""Audio datasets over CSV manifests (`path,split,label`): random training crops or evaluation sub-clips.

A manifest row names one clip; `label` holds its class name (several joined with ';' for multi-label
data, empty for unlabeled data) and `path` is relative to the manifest's folder. Items follow the
batch contract of docs/architecture.md: `audio` [T], `padding_mask` [T], `label`, `clip_id`.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssl_lightning.audio import AudioDecodeError, crop_or_pad, load_audio, spaced_crops, split_subclips

MANIFEST_COLUMNS: tuple[str, ...] = ("path", "split", "label")
LABEL_SEPARATOR = ";"
LabelType = Literal["single", "multi", "none"]
Mode = Literal["random_crop", "subclips"]
OnError = Literal["raise", "skip"]


@dataclass(frozen=True)
class ManifestRow:
    """One clip of a manifest: absolute `path`, `split` name and class names (`labels`, maybe empty)."""

    path: Path
    split: str
    labels: tuple[str, ...]


def read_manifest(csv_path: str | Path, classes: Sequence[str] | None = None) -> list[ManifestRow]:
    """Rows of the manifest `csv_path`, with paths resolved against its folder.

    Args:
        classes: when given, every label must be one of them.
    Raises:
        FileNotFoundError: no such manifest.
        ValueError: a required column is missing, a row has an empty path, or a label is unknown
            (the message names the line and the clip).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"manifest not found: {csv_path}. Generate the data first (for hares-mini: "
            "HaresMiniDataModule.prepare_data() or ensure_hares_mini())"
        )
    known = None if classes is None else set(classes)
    rows = []
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [column for column in MANIFEST_COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"manifest {csv_path} lacks column(s) {missing}: its header is {reader.fieldnames}, "
                f"expected {','.join(MANIFEST_COLUMNS)}"
            )
        for line, record in enumerate(reader, start=2):
            if not record["path"]:
                raise ValueError(f"manifest {csv_path} line {line}: empty path")
            labels = tuple(label for label in (record["label"] or "").split(LABEL_SEPARATOR) if label)
            unknown = [label for label in labels if known is not None and label not in known]
            if unknown:
                raise ValueError(
                    f"manifest {csv_path} line {line} ({record['path']}): unknown label(s) {unknown}; "
                    f"known classes: {list(classes)}"
                )
            rows.append(ManifestRow(csv_path.parent / record["path"], record["split"], labels))
    return rows


def probe_num_samples(path: Path, sample_rate: int) -> int:
    """Length in samples of the audio file `path` once resampled to `sample_rate`, read from its header.

    Raises FileNotFoundError or AudioDecodeError naming the file, like `load_audio`.
    """
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise AudioDecodeError(
            f"cannot read the header of audio file {path}: {error}; re-encode or remove it"
        ) from error
    if info.frames <= 0:
        raise AudioDecodeError(
            f"audio file {path} holds 0 samples; remove it from the manifest or replace it"
        )
    return math.ceil(info.frames * sample_rate / info.samplerate)


def _preview(names: Sequence[str], limit: int = 12) -> str:
    """`names` for an error message: all of them, or the first `limit` and how many there are."""
    if len(names) <= limit:
        return str(list(names))
    return f"{list(names[:limit])} ... ({len(names)} in all)"


class PackedPaths(Sequence[Path]):
    """A read-only sequence of paths stored as one UTF-8 byte array plus offsets.

    A list of millions of `Path` objects (AudioSet) costs hundreds of MB, and forked DataLoader workers
    copy it page by page as they touch the objects' reference counts; two numpy arrays are shared as is.
    """

    def __init__(self, paths: Iterable[str | Path]) -> None:
        encoded = [str(path).encode() for path in paths]
        self._offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded], dtype=np.int64)])
        self._buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return self._offsets.size - 1

    def __getitem__(self, index: int) -> Path:
        if not -len(self) <= index < len(self):
            raise IndexError(f"path index {index} out of range for {len(self)} paths")
        index %= len(self)
        return Path(self._buffer[self._offsets[index] : self._offsets[index + 1]].tobytes().decode())


class ManifestAudioDataset(Dataset):
    """Clips listed in a manifest, as random training crops or as deterministic evaluation sub-clips.

    Modes:
        "random_crop": one item per clip, a fresh random crop of `num_samples` at every read (drawn
            from torch's global generator, which DataLoader seeds per worker); `num_samples=None`
            keeps whole clips (the collate pads them).
        "subclips": one item per sub-clip: each clip is cut into contiguous sub-clips of `num_samples`
            (`split_subclips`, the last one zero-padded), or with `crops=K` into K equally spaced,
            overlapping crops (`spaced_crops`), all sharing the clip's `clip_id` so that evaluation can
            average their scores. The index is built from the file headers.

    Items: `audio` float32 [num_samples], `padding_mask` bool [num_samples] (True = padding),
    `clip_id` int64 scalar (the clip's position in `items`), and `label`: int64 scalar class index
    ("single"), float32 multi-hot [C] ("multi"), absent for label_type "none".

    Unreadable files: `on_error="raise"` raises the loader's error (naming the file) when the clip is
    read; `on_error="skip"` checks every header up front (sub-clips: decodes every file, to index the
    exact lengths), leaves unreadable clips out, lists them in `skipped` and warns with their count.
    A training clip whose header reads but whose samples do not (NaN, inf) is found only when read:
    with "skip" it is left out from then on with one warning naming it (per process), its item served
    by the next clip in order that decodes, so no read fails and none repeats at random. A bad clip
    never turns into zeros.
    """

    def __init__(
        self,
        items: Sequence[tuple[str | Path, Sequence[str]]],
        classes: Sequence[str],
        label_type: LabelType,
        sample_rate: int = 16000,
        num_samples: int | None = None,
        mode: Mode = "random_crop",
        on_error: OnError = "raise",
        crops: int | None = None,
    ) -> None:
        if label_type not in ("single", "multi", "none"):
            raise ValueError(f"label_type must be 'single', 'multi' or 'none', got {label_type!r}")
        if mode not in ("random_crop", "subclips"):
            raise ValueError(f"mode must be 'random_crop' or 'subclips', got {mode!r}")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        if (num_samples is not None and num_samples <= 0) or (mode == "subclips" and num_samples is None):
            raise ValueError(
                f"num_samples must be a positive int (required for mode='subclips'), got {num_samples}"
            )
        if crops is not None and (mode != "subclips" or not isinstance(crops, int) or crops < 1):
            raise ValueError(f"crops must be a positive int and goes with mode='subclips'; got {crops!r}")
        self.crops = crops
        self.paths = PackedPaths(path for path, _ in items)
        self.classes = tuple(classes)
        self.label_type = label_type
        self.sample_rate, self.num_samples, self.mode, self.on_error = (
            sample_rate,
            num_samples,
            mode,
            on_error,
        )
        self._label_offsets, self._label_ids = self._encode_labels(items)
        self.skipped: list[Path] = []
        probed = mode == "subclips" or on_error == "skip"
        lengths = self._probe_lengths() if probed else np.zeros(len(self.paths), dtype=np.int64)
        kept = np.flatnonzero(lengths >= 0)
        if kept.size == 0:
            raise ValueError(f"ManifestAudioDataset has no readable clip out of {len(self.paths)}")
        if mode == "random_crop":
            self._clip, self._subclip = kept, np.zeros_like(kept)
        else:
            if crops is None:
                rest = np.maximum(lengths[kept] - num_samples, 0)
                per_clip = 1 + np.ceil(rest / num_samples).astype(np.int64)
            else:
                per_clip = np.where(lengths[kept] > num_samples, crops, 1).astype(np.int64)
            self._clip = np.repeat(kept, per_clip)
            self._subclip = np.arange(self._clip.size) - np.repeat(np.cumsum(per_clip) - per_clip, per_clip)
        self._cached: tuple[int, Tensor, Tensor] | None = None
        self._undecodable: set[int] = set()

    def _encode_labels(
        self, items: Sequence[tuple[str | Path, Sequence[str]]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Class ids of every clip as offsets [N + 1] and ids [M] (clip i: ids[offsets[i]:offsets[i + 1]]).

        Arrays rather than one tensor per clip: a few bytes per label at AudioSet scale, shared by forked
        DataLoader workers. Labels are checked against `classes`; a multi-label clip's repeats count once.
        """
        if self.label_type == "none":
            return np.zeros(len(items) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64)
        index = {name: i for i, name in enumerate(self.classes)}
        counts = np.zeros(len(items), dtype=np.int64)
        ids: list[int] = []
        for i, (path, labels) in enumerate(items):
            unknown = [label for label in labels if label not in index]
            if unknown:
                raise ValueError(
                    f"{path}: unknown label(s) {unknown}; known classes: {_preview(self.classes)}"
                )
            if self.label_type == "single" and len(labels) != 1:
                raise ValueError(f"{path}: a single-label clip needs exactly one label, got {list(labels)}")
            unique = list(dict.fromkeys(index[label] for label in labels))
            ids += unique
            counts[i] = len(unique)
        return np.concatenate([[0], np.cumsum(counts)]), np.array(ids, dtype=np.int64)

    def _label(self, clip: int) -> Tensor:
        """Label of one clip: int64 scalar ("single") or float32 multi-hot [C] ("multi")."""
        ids = torch.from_numpy(self._label_ids[self._label_offsets[clip] : self._label_offsets[clip + 1]])
        if self.label_type == "single":
            return ids[0].clone()
        multi_hot = torch.zeros(len(self.classes), dtype=torch.float32)
        multi_hot[ids] = 1.0
        return multi_hot

    def label_pairs(self) -> tuple[Tensor, Tensor]:
        """(item [M], class [M]) int64: one pair per label of every item, items in `__getitem__` order.

        The sparse form of the items' labels (e.g. for `inverse_frequency_weights`); empty for "none".
        """
        starts = self._label_offsets[self._clip]
        counts = self._label_offsets[self._clip + 1] - starts
        item = np.repeat(np.arange(len(self)), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        position = np.repeat(starts, counts) + np.arange(int(counts.sum())) - first
        return torch.from_numpy(item), torch.from_numpy(self._label_ids[position])

    def _probe_lengths(self) -> np.ndarray:
        """[N] resampled lengths (-1 for skipped files); collects `skipped`. Read from the headers, or
        for sub-clips with on_error="skip" from the decoded samples, so that evaluation leaves out a
        file whose samples are bad (an item cannot be dropped once its sub-clips are indexed)."""
        decode = self.mode == "subclips" and self.on_error == "skip"
        lengths = np.zeros(len(self.paths), dtype=np.int64)
        for i, path in enumerate(self.paths):
            try:
                lengths[i] = self.read(i).numel() if decode else self.probe(i)
            except (FileNotFoundError, AudioDecodeError):
                if self.on_error == "raise":
                    raise
                self.skipped.append(path)
                lengths[i] = -1
        if self.skipped:
            warnings.warn(
                f"ManifestAudioDataset skipped {len(self.skipped)} of {len(self.paths)} unreadable audio "
                f"file(s), e.g. {self.skipped[0]} (see .skipped)",
                stacklevel=3,
            )
        return lengths

    def read(self, clip: int) -> Tensor:
        """The waveform `[T]` of clip `clip` at `sample_rate` (a subclass may read another store)."""
        return load_audio(self.paths[clip], self.sample_rate)

    def probe(self, clip: int) -> int:
        """The length in samples of clip `clip` at `sample_rate`, cheaply (from the file header)."""
        return probe_num_samples(self.paths[clip], self.sample_rate)

    def __len__(self) -> int:
        """Number of items: clips ("random_crop") or sub-clips ("subclips")."""
        return int(self._clip.size)

    def _subclips(self, clip: int) -> tuple[Tensor, Tensor]:
        """[K, num_samples] sub-clips and padding masks of one clip (the last clip read is cached)."""
        if self._cached is None or self._cached[0] != clip:
            waveform = self.read(clip)
            if self.crops is None:
                self._cached = (clip, *split_subclips(waveform, self.num_samples))
            else:
                self._cached = (clip, *spaced_crops(waveform, self.num_samples, self.crops))
        return self._cached[1], self._cached[2]

    def _decodable_crop(self, index: int) -> tuple[int, Tensor]:
        """(clip, waveform) of training item `index`; with on_error="skip", a clip whose samples do not
        decode is warned about once, remembered, and the next clip in order that decodes serves instead."""
        for position in range(index, index + len(self)):
            clip = int(self._clip[position % len(self)])
            if clip in self._undecodable:
                continue
            try:
                return clip, self.read(clip)
            except AudioDecodeError as error:
                if self.on_error == "raise":
                    raise
                self._undecodable.add(clip)
                self.skipped.append(self.paths[clip])
                warnings.warn(f"{error} (left out: on_error='skip')", stacklevel=2)
        raise AudioDecodeError(
            f"none of the {len(self)} clips decodes (see the warnings naming them); check the audio files"
        )

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        clip = int(self._clip[index])
        if self.mode == "subclips":
            subclips, masks = self._subclips(clip)
            k = int(self._subclip[index])
            if k >= subclips.shape[0]:
                raise AudioDecodeError(
                    f"audio file {self.paths[clip]} decoded to {subclips.shape[0]} sub-clips, fewer than its "
                    f"header promised ({k + 1}); the file is truncated or changed since the dataset was built"
                )
            audio, padding_mask = subclips[k], masks[k]
        else:
            clip, audio = self._decodable_crop(index)
            if self.num_samples is None:
                padding_mask = torch.zeros(audio.shape, dtype=torch.bool)
            else:
                audio, padding_mask = crop_or_pad(audio, self.num_samples, mode="random")
        item = {
            "audio": audio,
            "padding_mask": padding_mask,
            "clip_id": torch.tensor(clip, dtype=torch.int64),
        }
        if self.label_type != "none":
            item["label"] = self._label(clip)
        return item
