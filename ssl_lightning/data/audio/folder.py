"""Unlabeled speech / audio for pre-training (wav2vec 2.0 / data2vec style): random crops of whole files.

`UnlabeledAudioDataModule` is the shared base: a subclass lists the audio files of each split
(`list_splits`); the base reads every file's header at `setup` (sample rate and length), leaves out files
shorter than `min_sample_size`, and serves batches `{"audio": float32 [B, T], "padding_mask": bool
[B, T], "clip_id": int64 [B]}` (`clip_id`: the file's index in its split). `AudioFolderDataModule`
lists any folder of audio files; `LibriSpeechDataModule` (librispeech.py) the LibriSpeech layout.

Crops follow fairseq's `RawAudioDataset` (`fairseq/data/audio/raw_audio_dataset.py`), the data of
data2vec's audio pre-training (`examples/data2vec/config/audio/pretraining/base_librispeech.yaml` and
`config/v2/base_audio_only_task.yaml`: max_sample_size 320000 (20 s), min_sample_size 32000 (2 s),
normalize true):
- files shorter than `min_sample_size` samples are left out (`FileAudioDataset.__init__`);
- a file of another sample rate is an error (`postprocess`); here at `setup`, naming the files;
- `normalize`: the whole file is standardised, `F.layer_norm(wav, wav.shape)`, before it is cropped;
- a training file longer than `max_sample_size` is cropped at a random offset (`crop_to_max_size`),
  drawn from a seed of `(seed, epoch, position)` (`resumable.py`), so a resumed fit continues exactly;
  valid files are cropped at their centre.
One difference: fairseq's pre-training collater (`pad=False`) crops every clip of a batch to the batch's
shortest one; here shorter clips are zero-padded to the batch's longest (`padding_mask` True there),
as its `pad=True` (fine-tuning) collater does, so no audio is dropped and the method masks the padding.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from ssl_lightning.audio import AudioDecodeError, collate_audio, crop_or_pad, load_audio_with_rate
from ssl_lightning.data.audio.datamodule import check_splits
from ssl_lightning.data.manifest import PackedPaths
from ssl_lightning.data.resumable import ResumableDataLoader, TrainLoaderState

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
"""File endings `AudioFolderDataModule` reads (case-insensitive): what libsndfile decodes."""
HEADER_THREADS = 16
"""Threads reading file headers at setup (I/O bound: network file systems answer slowly)."""
PREVIEW = 5
"""How many files an error names."""


def read_header(path: Path) -> tuple[int, int]:
    """(frames, sample rate) of the audio file `path`, from its header.

    Raises:
        FileNotFoundError, AudioDecodeError: naming the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"audio file not found: {path}")
    try:
        info = soundfile.info(str(path))
    except (soundfile.SoundFileError, RuntimeError) as error:
        raise AudioDecodeError(
            f"cannot read the header of audio file {path}: {error}; re-encode or remove it"
        ) from error
    return info.frames, info.samplerate


def scan_lengths(paths: Sequence[Path], sample_rate: int) -> np.ndarray:
    """Lengths in samples `[N]` of `paths`, read from their headers.

    Raises:
        ValueError: some files are not at `sample_rate` (the message counts them and names the first).
    """
    with ThreadPoolExecutor(HEADER_THREADS) as pool:
        headers = list(pool.map(read_header, paths))
    wrong = [(path, rate) for path, (_, rate) in zip(paths, headers, strict=True) if rate != sample_rate]
    if wrong:
        named = ", ".join(f"{path} ({rate} Hz)" for path, rate in wrong[:PREVIEW])
        raise ValueError(
            f"{len(wrong)} of {len(paths)} audio files are not at sample_rate={sample_rate} Hz: {named}; "
            f"resample them (e.g. `sox in.flac -r {sample_rate} out.flac`) or set sample_rate"
        )
    return np.array([frames for frames, _ in headers], dtype=np.int64)


class Utterances(Dataset):
    """Whole audio files as items `{"audio": float32 [T], "padding_mask": bool [T] (all False),
    "clip_id": int64}`, T <= `max_sample_size`: longer files are cropped at a random offset (drawn from
    torch's global generator, which `SeededItems` seeds per item) or at their centre (`crop="center"`).
    `normalize` standardises the whole file first (fairseq's `F.layer_norm(wav, wav.shape)`)."""

    def __init__(
        self, paths: Sequence[Path], sample_rate: int, max_sample_size: int | None, crop: str, normalize: bool
    ) -> None:
        self.paths = PackedPaths(paths)
        self.sample_rate, self.max_sample_size, self.crop, self.normalize = (
            sample_rate,
            max_sample_size,
            crop,
            normalize,
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        path = self.paths[index]
        audio, rate = load_audio_with_rate(path)
        if rate != self.sample_rate:
            raise ValueError(
                f"audio file {path} is at {rate} Hz, not {self.sample_rate} Hz (changed since setup?)"
            )
        if self.normalize:
            audio = F.layer_norm(audio, audio.shape)
        if self.max_sample_size is not None and audio.numel() > self.max_sample_size:
            audio, _ = crop_or_pad(audio, self.max_sample_size, mode=self.crop)
        return {
            "audio": audio,
            "padding_mask": torch.zeros(audio.shape, dtype=torch.bool),
            "clip_id": torch.tensor(index, dtype=torch.int64),
        }


class UnlabeledAudioDataModule(TrainLoaderState, L.LightningDataModule):
    """Random crops of whole audio files for pre-training; a subclass lists the files (`list_splits`).

    Subclasses take their own arguments and pass these on as keywords (`**kwargs`); the hyperparameters
    saved here are both (Lightning collects the arguments of every `__init__` in the chain).

    Args:
        max_sample_size: crop longer files to this many samples (None: whole files; data2vec: 320000).
        min_sample_size: leave out files shorter than this (None or 0: keep all; data2vec: 32000).
        sample_rate: the rate every file must have (no resampling).
        normalize: standardise each file (zero mean, unit variance) before cropping, as data2vec does.
        batch_size: files per batch.
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle and crops (and of a subclass's valid hold-out).
    """

    def __init__(
        self,
        max_sample_size: int | None = 320000,
        min_sample_size: int | None = 32000,
        sample_rate: int = 16000,
        normalize: bool = False,
        batch_size: int = 8,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, value, low in (
            ("max_sample_size", max_sample_size, 1),
            ("min_sample_size", min_sample_size, 0),
            ("sample_rate", sample_rate, 1),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
        ):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ValueError(f"{name}: {arg} must be an int >= {low}, got {value!r}")
        if None not in (max_sample_size, min_sample_size) and min_sample_size > max_sample_size:
            raise ValueError(
                f"{name}: min_sample_size {min_sample_size} is above max_sample_size {max_sample_size}"
            )
        self.save_hyperparameters()
        self.max_sample_size, self.min_sample_size = max_sample_size, min_sample_size
        self.sample_rate, self.normalize = sample_rate, normalize
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self._datasets: dict[str, Utterances] | None = None

    def list_splits(self) -> tuple[dict[str, list[Path]], dict[str, str]]:
        """The audio files of each split ("train", and "valid" when there is one) and, per split, where
        they were looked for (for error messages)."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        """List the files, check their sample rate, leave out the short ones (once)."""
        if self._datasets is not None:
            return
        files, sources = self.list_splits()
        kept: dict[str, list[tuple[Path, tuple[()]]]] = {}
        for split, paths in files.items():
            long_enough = scan_lengths(paths, self.sample_rate) >= (self.min_sample_size or 0)
            kept[split] = [(path, ()) for path, keep in zip(paths, long_enough, strict=True) if keep]
            if not long_enough.all():
                sources[split] += (
                    f" ({int((~long_enough).sum())} of {len(paths)} files are shorter than "
                    f"min_sample_size={self.min_sample_size} and left out)"
                )
        check_splits(kept, sources, type(self).__name__)
        self._datasets = {
            split: Utterances(
                [path for path, _ in clips],
                self.sample_rate,
                self.max_sample_size,
                "random" if split == "train" else "center",
                self.normalize,
            )
            for split, clips in kept.items()
        }

    def dataset(self, split: str) -> Utterances:
        """The files of `split` ("train" or "valid")."""
        if self._datasets is None:
            raise RuntimeError(
                f"{type(self).__name__}.setup() must run before asking for a dataset or loader"
            )
        if split not in self._datasets:
            raise ValueError(
                f"{type(self).__name__} has no split {split!r}; its splits: {list(self._datasets)}"
            )
        return self._datasets[split]

    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled random crops of the train files; a resumed fit continues exactly."""
        return self.resumable_train_loader(self.dataset("train"), collate_audio)

    def val_dataloader(self) -> DataLoader | list:
        """Centre crops of the valid files in order (an empty list when there is no valid split)."""
        if self._datasets is not None and "valid" not in self._datasets:
            return []
        return DataLoader(
            self.dataset("valid"),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collate_fn=collate_audio,
            persistent_workers=self.num_workers > 0,
        )


def find_audio_files(root: Path) -> list[Path]:
    """Every file under `root` (recursively, following no links) ending in `AUDIO_EXTENSIONS`, sorted."""
    return sorted(
        Path(folder) / name
        for folder, _, names in os.walk(root)
        for name in names
        if name.lower().endswith(AUDIO_EXTENSIONS)
    )


class AudioFolderDataModule(UnlabeledAudioDataModule):
    """Every wav / flac / ogg file under `root` (any sub-folders), a seeded `valid_fraction` of the files
    held out as the valid split; see `UnlabeledAudioDataModule` for the crops and batches.

    Args:
        root: the folder of audio files.
        valid_fraction: share of the files held out (at least one when positive; 0: no valid split).
        kwargs: the crop and loader arguments of `UnlabeledAudioDataModule`.
    """

    def __init__(self, root: str, valid_fraction: float = 0.01, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if (
            isinstance(valid_fraction, bool)
            or not isinstance(valid_fraction, int | float)
            or not 0 <= valid_fraction < 1
        ):
            raise ValueError(
                f"AudioFolderDataModule: valid_fraction must lie in [0, 1), got {valid_fraction!r}"
            )
        self.root, self.valid_fraction = Path(root).expanduser(), valid_fraction

    def list_splits(self) -> tuple[dict[str, list[Path]], dict[str, str]]:
        """All audio files under `root`, split by a seeded draw."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"AudioFolderDataModule: audio folder not found: root={self.root}")
        files = find_audio_files(self.root)
        where = f"the {'/'.join(AUDIO_EXTENSIONS)} files under {self.root}"
        if not files:
            raise FileNotFoundError(
                f"AudioFolderDataModule: no audio files under {self.root} (endings {AUDIO_EXTENSIONS})"
            )
        if self.valid_fraction == 0:
            return {"train": files}, {"train": where}
        count = max(round(self.valid_fraction * len(files)), 1)
        valid = set(np.random.default_rng(self.seed).permutation(len(files))[:count].tolist())
        splits = {
            "train": [path for i, path in enumerate(files) if i not in valid],
            "valid": [path for i, path in enumerate(files) if i in valid],
        }
        return splits, {split: f"{where}, valid_fraction={self.valid_fraction}" for split in splits}
