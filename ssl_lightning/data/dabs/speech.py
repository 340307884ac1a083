"""DABS speech (Tamkin et al. 2021): the library's audio datamodules served as DABS spectrogram images.

Every DABS speech data set shares one front-end (`ssl_lightning/audio/dabs_logmel.py`): the clip, cut
(training: its start or its end at random; evaluation: its start) or zero-padded to 150,526 samples,
becomes a `1 x 224 x 224` log-mel image computed at the files' own rate (16 kHz, but 48 kHz for
AudioMNIST: its 150,526 samples last 3.1 s), normalised with one (mean, std) per data set. Batches:
`{"spectrogram": float [B, 1, 224, 224], "label": ..., "clip_id": int64 [B]}`; one input,
`InputSpec("spectrogram", "2d", (224, 224), 16, 1)` (196 patches).

`DabsSpeechDataModule(source)` wraps any labelled `AudioClassificationDataModule` (DABS's transfer sets:
`SpeechCommandsDataModule(version=2)` (35 words), `FluentSpeechCommandsDataModule` with `slot="action"`,
`"object"` or `"location"` (DABS scores the three slots as three tasks), `VoxCeleb1DataModule`,
`AudioMNISTDataModule` with `sample_rate=48000`, `LibriSpeechSpeakerDataModule` with
`train_on_valid=False`), or an unlabeled `UnlabeledAudioDataModule`; with no source it serves the
embedded hares-mini `speech_keywords` task (1 s clips, zero-padded as DABS pads short clips).
`DabsLibriSpeechDataModule` is DABS's pre-training set, LibriSpeech 960 h (valid: dev-clean), unlabeled
here.

Splits: DABS trains its linear probe on the source's train and valid splits together (Speech Commands
and Fluent read both CSVs / lists, VoxCeleb1 iden_split 1 and 2) and scores it on test; `train_on_valid`
(default True) does the same, keeping valid as the valid split (then inside train: DABS selects nothing
on it). A source whose valid split serves its test clips (`valid_is_test`: the LibriSpeech speaker task,
which DABS splits into train and test only) needs `train_on_valid=False`. Whole clips are read from the
source's clip lists at `source.sample_rate`, which must be `sample_rate` (the rate the log-mel is computed
at: the files' own rate, as DABS, which never resamples).

Normalisation: DABS hard-codes each set's statistics (`DABS_STATS`: LibriSpeech -22.924 / 12.587,
Speech Commands -46.847 / 19.151, Fluent -31.809 / 13.127, AudioMNIST -90.293 / 11.799, VoxCeleb1
-37.075 / 19.776; the code does not say how they were computed). Pass them as `mean` / `std` to
reproduce DABS; None computes the mean and standard deviation of every log-mel value of the first
`stats_clips` train clips (evaluation view), e.g. for the hares-mini stand-ins.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset

from ssl_lightning.audio.dabs_logmel import (
    DABS_N_MELS,
    DABS_SAMPLE_RATE,
    DABS_STATS,
    DabsLogMel,
    dabs_cut_or_pad,
)
from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule
from ssl_lightning.data.audio.folder import UnlabeledAudioDataModule
from ssl_lightning.data.audio.librispeech import TRAIN_960H, LibriSpeechDataModule
from ssl_lightning.data.dabs.base import DabsDataModule, Mode
from ssl_lightning.data.embedded.hares_mini import HaresMiniDataModule
from ssl_lightning.nn.input_specs import InputSpec

SPECTROGRAM_SPEC = InputSpec("spectrogram", "2d", (DABS_N_MELS, DABS_N_MELS), 16, 1)
"""DABS speech's one input: a 1 x 224 x 224 log-mel image in 16 x 16 patches."""
DEFAULT_STATS_CLIPS = 500
"""Train clips whose log-mel values give the normalisation statistics when none are passed."""

AudioSource = AudioClassificationDataModule | UnlabeledAudioDataModule


def whole_clips(source: AudioSource, split: str) -> Dataset:
    """The clips of `source`'s `split` as whole waveforms: items `{"audio": [T], "label"?: ...}`.

    Raises:
        ValueError: the source has no such split.
    """
    source.setup()
    if isinstance(source, UnlabeledAudioDataModule):
        return source.dataset(split)
    splits = source._splits  # the clip lists setup read; the base builds only cropped datasets of them
    if split not in splits:
        raise ValueError(f"{type(source).__name__} has no split {split!r}; its splits: {list(splits)}")
    clips = splits[split]
    return source.dataset_class(split, clips)(
        clips,
        source.label_names,
        "none" if source.label_type is None else source.label_type,
        sample_rate=source.sample_rate,
        num_samples=None,
        mode="random_crop",
        on_error=source.on_error,
    )


class DabsSpectrograms(Dataset):
    """`clips`' waveforms as DABS images: items `{"spectrogram": [1, 224, 224], "label"?: ...}`.

    `random_side`: a clip longer than DABS's length keeps its start or its end at random (torch's global
    generator); else its start. `slot_ids`: turn a multi-hot label into the class id among these columns
    (Fluent's one slot); None keeps the label as it is.
    """

    def __init__(
        self, clips: Dataset, front_end: DabsLogMel, random_side: bool, slot_ids: Tensor | None = None
    ) -> None:
        self.clips, self.front_end, self.random_side, self.slot_ids = clips, front_end, random_side, slot_ids

    def __len__(self) -> int:
        return len(self.clips)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        item = self.clips[index]
        side = "end" if self.random_side and torch.randint(2, ()).item() == 1 else "start"
        waveform = dabs_cut_or_pad(item["audio"], side)
        out = {SPECTROGRAM_SPEC.name: self.front_end(waveform[None])[0]}
        if "label" in item:
            out["label"] = item["label"] if self.slot_ids is None else self.slot_label(item["label"], index)
        return out

    def slot_label(self, multi_hot: Tensor, index: int) -> Tensor:
        """The id (int64 scalar) of the one class set among `slot_ids` in `multi_hot` [C]."""
        hits = torch.nonzero(multi_hot[self.slot_ids]).flatten()
        if hits.numel() != 1:
            raise ValueError(f"clip {index} has {hits.numel()} classes of the slot set; expected exactly one")
        return hits[0].to(torch.int64)


def log_mel_stats(clips: Dataset, count: int, sample_rate: int = DABS_SAMPLE_RATE) -> tuple[float, float]:
    """(mean, std) of every log-mel value of the first `count` clips (start cut, not normalised), computed
    at `sample_rate`."""
    images = DabsSpectrograms(clips, DabsLogMel(sample_rate=sample_rate), random_side=False)
    sums = torch.zeros(3, dtype=torch.float64)  # values, their sum, the sum of their squares
    for index in range(min(count, len(images))):
        image = images[index][SPECTROGRAM_SPEC.name].double()
        sums += torch.stack([torch.tensor(image.numel()), image.sum(), image.square().sum()])
    mean = (sums[1] / sums[0]).item()
    return mean, max((sums[2] / sums[0]).item() - mean**2, 0.0) ** 0.5


class DabsSpeechDataModule(DabsDataModule):
    """A labelled or unlabeled audio datamodule through DABS's speech front-end (module docstring).

    Args:
        source: the audio datamodule (None: hares-mini `speech_keywords`); its `sample_rate` must be
            `sample_rate`.
        slot: with a multi-label source whose classes are named `<slot>=<value>` (Fluent), serve that
            slot alone as a single-label task ("action", "object" or "location").
        train_on_valid: train on the source's train and valid splits together, as DABS (False for a source
            whose valid split is its test split: `valid_is_test`).
        mean, std: the log-mel normalisation (DABS's per-set values: `DABS_STATS`); None: computed.
        stats_clips: train clips the statistics are computed from when `mean` / `std` are None.
        sample_rate: the rate DABS computes the log-mel at: the files' own rate, 16 kHz for every DABS
            speech set but AudioMNIST's 48 kHz.
        batch_size: items per batch (DABS: 64).
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle and of the random cut sides.
    """

    input_specs = [SPECTROGRAM_SPEC]

    def __init__(
        self,
        source: AudioSource | None = None,
        slot: str | None = None,
        train_on_valid: bool = True,
        mean: float | None = None,
        std: float | None = None,
        stats_clips: int = DEFAULT_STATS_CLIPS,
        sample_rate: int = DABS_SAMPLE_RATE,
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.save_hyperparameters(ignore=["source"])
        name = type(self).__name__
        self.source = HaresMiniDataModule("speech_keywords", seed=seed) if source is None else source
        source_name = type(self.source).__name__
        if self.source.sample_rate != sample_rate:
            raise ValueError(
                f"{name}: DABS's front-end reads audio at the files' own rate, here {sample_rate} Hz (16 kHz "
                f"for every DABS speech set but AudioMNIST's 48 kHz); construct {source_name} with "
                f"sample_rate={sample_rate} (got {self.source.sample_rate}), or give {name} the files' rate "
                "as sample_rate"
            )
        if train_on_valid and getattr(self.source, "valid_is_test", False):
            raise ValueError(
                f"{name}: {source_name}'s valid split serves its test clips (DABS has no valid split for "
                "it), so train_on_valid=True would train on the test set; pass train_on_valid=False"
            )
        if getattr(self.source, "max_sample_size", None) is not None:
            raise ValueError(
                f"{name}: DABS cuts whole files itself; construct {source_name} with "
                f"max_sample_size=None (got {self.source.max_sample_size})"
            )
        if (mean is None) != (std is None):
            raise ValueError(f"{name}: give both mean and std (e.g. DABS_STATS['fluent']) or neither")
        if isinstance(stats_clips, bool) or not isinstance(stats_clips, int) or stats_clips < 1:
            raise ValueError(f"{name}: stats_clips must be a positive int, got {stats_clips!r}")
        self.slot, self.train_on_valid, self.stats_clips = slot, train_on_valid, stats_clips
        self.sample_rate = sample_rate
        self.mean, self.std = mean, std
        self._slot_ids: Tensor | None = None
        self.front_end: DabsLogMel | None = None

    @property
    def labelled(self) -> bool:
        """Whether the source has labels (an unlabeled one's batches carry no `label`)."""
        return isinstance(self.source, AudioClassificationDataModule) and self.source.label_type is not None

    def slot_columns(self, slot: str) -> Tensor:
        """The class ids of the source named `<slot>=<value>`.

        Raises:
            ValueError: the source is not multi-label or has no class of that slot.
        """
        prefix = f"{slot}="
        ids = [i for i, name in enumerate(self.source_classes) if name.startswith(prefix)]
        if not self.labelled or self.source.label_type != "multi" or not ids:
            raise ValueError(
                f"{type(self).__name__}: slot={slot!r} needs a multi-label source with classes named "
                f"'{prefix}<value>' (FluentSpeechCommandsDataModule); {type(self.source).__name__} has "
                f"classes {list(self.source_classes)[:8]}"
            )
        return torch.tensor(ids, dtype=torch.int64)

    @property
    def source_classes(self) -> tuple[str, ...]:
        """The source's class names (empty if unlabeled)."""
        return self.source.classes if self.labelled else ()

    @property
    def classes(self) -> tuple[str, ...]:
        """The source's classes; with `slot`, that slot's values (`<slot>=` removed); empty if unlabeled."""
        if self._slot_ids is None:
            return self.source_classes
        return tuple(self.source_classes[i].split("=", 1)[1] for i in self._slot_ids.tolist())

    @property
    def label_type(self) -> str:
        """ "single" (also with `slot`, and for unlabeled data, whose batches have no label) or "multi"."""
        return (
            "multi" if self.labelled and self.slot is None and self.source.label_type == "multi" else "single"
        )

    @property
    def canonical(self) -> bool:
        """The source's splits are the official ones and train includes valid, as DABS (or the source has
        no valid split of its own: `valid_is_test`)."""
        whole_train = self.train_on_valid or getattr(self.source, "valid_is_test", False)
        return bool(getattr(self.source, "canonical", False)) and whole_train

    @property
    def split_note(self) -> str:
        train = "its train + valid (as DABS)" if self.train_on_valid else "its train"
        note = getattr(self.source, "split_note", f"{type(self.source).__name__}'s splits")
        return f"DABS speech front-end over {type(self.source).__name__}: train = {train}; {note}"

    def prepare_data(self) -> None:
        """The source's preparation (hares-mini generates its clips)."""
        self.source.prepare_data()

    def load(self) -> None:
        """Read the source's clip lists, find the slot's classes, fix the normalisation statistics."""
        if self.slot is not None:
            self._slot_ids = self.slot_columns(self.slot)
        if self.mean is None:
            self.mean, self.std = log_mel_stats(
                self.source_split("train"), self.stats_clips, self.sample_rate
            )
        self.front_end = DabsLogMel(self.mean, self.std, sample_rate=self.sample_rate)

    def source_split(self, split: str) -> Dataset:
        """Whole clips of `split`: train with valid when `train_on_valid`."""
        parts: Sequence[str] = ("train", "valid") if split == "train" and self.train_on_valid else (split,)
        datasets = [whole_clips(self.source, part) for part in parts]
        return datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)

    def make_dataset(self, split: str, mode: Mode) -> DabsSpectrograms:
        assert self.front_end is not None  # load() ran
        return DabsSpectrograms(
            self.source_split(split),
            self.front_end,
            random_side=mode == "random_crop",
            slot_ids=self._slot_ids,
        )


class DabsLibriSpeechDataModule(DabsSpeechDataModule):
    """DABS's speech pre-training set: LibriSpeech utterances (unlabeled; DABS's speaker ids fed only its
    online probe), normalised with DABS's LibriSpeech statistics. Splits: train and valid (no test).

    Args:
        root: the `LibriSpeech` folder holding the subset folders (see `LibriSpeechDataModule`).
        train_subsets: DABS: train-clean-100, train-clean-360 and train-other-500.
        valid_subset: DABS: dev-clean.
        mean, std: DABS's LibriSpeech statistics by default.
        batch_size, num_workers, seed: as `DabsSpeechDataModule`.
    """

    def __init__(
        self,
        root: str,
        train_subsets: Sequence[str] = TRAIN_960H,
        valid_subset: str = "dev-clean",
        mean: float = DABS_STATS["librispeech"][0],
        std: float = DABS_STATS["librispeech"][1],
        batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        source = LibriSpeechDataModule(
            root, train_subsets, valid_subset, max_sample_size=None, min_sample_size=None, seed=seed
        )
        super().__init__(
            source, None, False, mean, std, batch_size=batch_size, num_workers=num_workers, seed=seed
        )

    @property
    def canonical(self) -> bool:
        """DABS's subsets: the 960 h for training, dev-clean for validation."""
        return tuple(self.source.train_subsets) == TRAIN_960H and self.source.valid_subset == "dev-clean"

    @property
    def split_note(self) -> str:
        return (
            f"LibriSpeech {', '.join(self.source.train_subsets)} (train) and {self.source.valid_subset} "
            "(valid), unlabeled; no test split"
        )
