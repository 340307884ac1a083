"""`AudioMNISTDataModule`: AudioMNIST spoken digits (Becker et al. 2018; 60 speakers x 10 digits x 50
repetitions = 30,000 clips, 10 classes), split by speaker as DABS 1.0 does.

Layout (github.com/soerenab/AudioMNIST, cloned or its master zip unpacked as `AudioMNIST-master/`; `root`
is that folder):

    <root>/data/<NN>/<digit>_<NN>_<index>.wav   speaker NN = 01..60 (two digits), index 0..49;
                                                48 kHz mono, under 1 s
    <root>/data/audioMNIST_meta.txt             speaker metadata (not read)

The label is the digit, the file name's first `_` field. Splits are DABS's speaker lists
(`src/datasets/speech/audio_mnist.py` at commit 7ee9a71: `AUDIOMNIST_TRAIN_SPK`, `_VAL_SPK`, `_TEST_SPK`;
36 / 12 / 12 speakers): DABS trains on its train and valid speakers together and tests on the test ones
(`DabsSpeechDataModule`'s `train_on_valid=True`). Clips are listed speaker by speaker in the list's order;
within a speaker DABS takes `glob`'s file-system order, here the sorted file names (deterministic).

DABS computes its log-mel at the files' own rate, 48 kHz (torchaudio.load, no resampling), so the clips are
served at 48 kHz by default; pass the same `sample_rate=48000` to `DabsSpeechDataModule`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule, Clip, check_splits
from ssl_lightning.data.manifest import OnError

# fmt: off
TRAIN_SPEAKERS = (
    28, 56, 7, 19, 35, 1, 6, 16, 23, 34, 46, 53, 36, 57, 9, 24, 37, 2, 8, 17,
    29, 39, 48, 54, 43, 58, 14, 25, 38, 3, 10, 20, 30, 40, 49, 55,
)
# fmt: on
VALID_SPEAKERS = (12, 47, 59, 15, 27, 41, 4, 11, 21, 31, 44, 50)
TEST_SPEAKERS = (26, 52, 60, 18, 32, 42, 5, 13, 22, 33, 45, 51)
SPEAKERS = {"train": TRAIN_SPEAKERS, "valid": VALID_SPEAKERS, "test": TEST_SPEAKERS}
"""DABS's speaker split, each list in DABS's order."""
DIGITS = tuple(str(digit) for digit in range(10))
SAMPLE_RATE = 48000
"""The files' rate, the one DABS's log-mel is computed at."""
FILE_NAME = re.compile(r"(\d)_(\d{2})_(\d+)\.wav")
"""`<digit>_<speaker NN>_<index>.wav`."""
DOWNLOAD = "https://github.com/soerenab/AudioMNIST"


def speaker_clips(folder: Path, speaker: int) -> list[Clip]:
    """The clips of one speaker folder `data/<NN>/`, sorted by file name, labelled with their digit.

    Raises:
        ValueError: a wav file is not named `<digit>_<NN>_<index>.wav` with this folder's speaker NN.
    """
    clips = []
    for path in sorted(folder.glob("*.wav")):
        match = FILE_NAME.fullmatch(path.name)
        if match is None or int(match[2]) != speaker:
            raise ValueError(
                f"{path}: AudioMNIST files are named <digit>_<speaker>_<index>.wav with the folder's speaker "
                f"({speaker:02d}), e.g. 7_{speaker:02d}_12.wav; move or remove this file"
            )
        clips.append((path, (match[1],)))
    return clips


class AudioMNISTDataModule(AudioClassificationDataModule):
    """AudioMNIST's digits with DABS's speaker split (see the module docstring).

    Clips are single-label (the digit), served at `sample_rate` (48 kHz: the files' own rate). Training
    crops and evaluation sub-clips last `clip_seconds` (1 s: whole clips, the last zero-padded).
    Speakers of the lists whose folder is absent are left out (`canonical` is then False; the split note
    counts them).

    Args:
        root: the AudioMNIST repository folder (holds `data/01` ... `data/60`).
        batch_size: clips (training) or sub-clips (evaluation) per batch (DABS: 64).
        num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds: see
            `AudioClassificationDataModule`.
    """

    classes = DIGITS
    label_type = "single"

    def __init__(
        self,
        root: str,
        batch_size: int = 64,
        num_workers: int = 0,
        sample_rate: int = SAMPLE_RATE,
        clip_seconds: float = 1.0,
        on_error: OnError = "raise",
        seed: int = 0,
        train_seconds: float | None = None,
    ) -> None:
        super().__init__(batch_size, num_workers, sample_rate, clip_seconds, on_error, seed, train_seconds)
        self.save_hyperparameters()
        self.root = Path(root).expanduser()

    def speaker_folder(self, speaker: int) -> Path:
        """`<root>/data/<NN>`."""
        return self.root / "data" / f"{speaker:02d}"

    @property
    def found(self) -> dict[str, list[int]]:
        """The speakers of every split whose folder exists, in DABS's order."""
        return {
            split: [speaker for speaker in speakers if self.speaker_folder(speaker).is_dir()]
            for split, speakers in SPEAKERS.items()
        }

    @property
    def canonical(self) -> bool:
        """DABS's split over the whole data set: all 60 speaker folders are there."""
        return all(len(self.found[split]) == len(SPEAKERS[split]) for split in SPEAKERS)

    @property
    def split_note(self) -> str:
        counts = ", ".join(f"{split} {len(self.found[split])}/{len(SPEAKERS[split])}" for split in SPEAKERS)
        return f"AudioMNIST, DABS's speaker split (speakers found: {counts}) from {self.root / 'data'}"

    def read_splits(self) -> dict[str, list[Clip]]:
        """The clips of every split's speakers, speaker by speaker in DABS's list order.

        Raises:
            FileNotFoundError: no `<root>/data` folder (the message says where AudioMNIST comes from).
            ValueError: a split has no clip, or a file is misnamed.
        """
        data = self.root / "data"
        if not data.is_dir():
            nested = self.root / "AudioMNIST-master" / "data"
            hint = f" ({nested} exists: pass root={nested.parent})" if nested.is_dir() else ""
            raise FileNotFoundError(
                f"AudioMNIST data folder not found: {data}{hint}. git clone {DOWNLOAD} (or unpack its master "
                "zip) and pass the repository folder as root: it holds data/01 ... data/60 with "
                "<digit>_<speaker>_<index>.wav files"
            )
        splits = {
            split: [
                clip for speaker in speakers for clip in speaker_clips(self.speaker_folder(speaker), speaker)
            ]
            for split, speakers in self.found.items()
        }
        sources = {
            split: f"the folders {', '.join(f'{s:02d}' for s in speakers)} under {data}"
            for split, speakers in SPEAKERS.items()
        }
        check_splits(splits, sources, "AudioMNIST")
        return splits
