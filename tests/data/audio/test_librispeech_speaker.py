"""Tests for LibriSpeechSpeakerDataModule on a tiny dev-clean (tests/layouts/LibriSpeechSpeakerDataModule.py):
DABS's RandomState(42) per-speaker 80/20 split, worked out by hand, the class order, canonical and the
errors."""

import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from ssl_lightning.data.audio.librispeech_speaker import LibriSpeechSpeakerDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "LibriSpeechSpeakerDataModule.py"))
)

WALKER = [
    *(f"1272-128104-{utt:04d}" for utt in range(4)),  # 0..3
    *(f"1272-135031-{utt:04d}" for utt in range(3)),  # 4..6
    *(f"174-50561-{utt:04d}" for utt in range(4)),  # 7..10
    *(f"84-121123-{utt:04d}" for utt in range(3)),  # 11..13
    *(f"84-121550-{utt:04d}" for utt in range(2)),  # 14..15
]
"""torchaudio's LIBRISPEECH order of the layout: the sorted stems (1272 < 174 < 84 as strings)."""
# One RandomState(42), speakers in numeric order 84, 174, 1272: shuffle([11..15]) = [12, 15, 13, 11, 14],
# then shuffle([7..10]) = [8, 9, 7, 10], then shuffle([0..6]) = [5, 0, 3, 4, 2, 1, 6]; int(0.8 n) = 4, 3, 5
# go to train.
TRAIN = [12, 15, 13, 11, 8, 9, 7, 5, 0, 3, 4, 2]
TEST = [14, 10, 1, 6]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return Path(layout.make(tmp_path_factory.mktemp("librispeech"))["root"])


def ready(root: Path, **kwargs) -> LibriSpeechSpeakerDataModule:
    datamodule = LibriSpeechSpeakerDataModule(str(root), **kwargs)
    datamodule.setup()
    return datamodule


def stems(datamodule: LibriSpeechSpeakerDataModule, split: str) -> list[str]:
    dataset = datamodule.dataset(split, "random_crop")
    return [dataset.paths[i].stem for i in range(len(dataset))]


def test_dabs_split_of_dev_clean(root):
    datamodule = ready(root)
    assert stems(datamodule, "train") == [WALKER[i] for i in TRAIN]
    assert stems(datamodule, "test") == [WALKER[i] for i in TEST]
    assert stems(datamodule, "valid") == stems(datamodule, "test") and datamodule.valid_is_test
    assert datamodule.batch_size == 64 and datamodule.sample_rate == 16000


def test_classes_are_the_speakers_in_numeric_order(root):
    datamodule = ready(root)
    assert datamodule.classes == ("84", "174", "1272") and datamodule.label_type == "single"
    assert not datamodule.canonical and "dev-clean (3 speakers)" in datamodule.split_note
    dataset = datamodule.dataset("train", "random_crop")
    labels = [int(dataset[i]["label"]) for i in range(len(dataset))]
    assert labels == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2]


def test_canonical_needs_the_40_speakers_of_dev_clean(tmp_path):
    base = tmp_path / "LibriSpeech"
    for speaker in range(100, 140):
        folder = base / "dev-clean" / str(speaker) / "7"
        folder.mkdir(parents=True)
        for utt in range(2):
            soundfile.write(str(folder / f"{speaker}-7-{utt:04d}.flac"), np.zeros(160), 16000, "PCM_16")
    datamodule = ready(base)
    assert len(datamodule.classes) == 40 and datamodule.canonical
    assert len(datamodule.dataset("train", "random_crop")) == 40  # int(0.8 * 2) = 1 of each speaker
    (base / "dev-clean").rename(base / "test-clean")
    assert not ready(base, subset="test-clean").canonical


def test_errors_say_what_to_do(tmp_path, root):
    with pytest.raises(FileNotFoundError, match="LibriSpeech root not found.*openslr.org/12"):
        ready(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"LibriSpeech/dev-clean exists: pass root=.*LibriSpeech"):
        ready(root.parent)
    copy = Path(shutil.copytree(root, tmp_path / "LibriSpeech"))
    shutil.copy(
        copy / "dev-clean" / "174" / "50561" / "174-50561-0000.flac",
        copy / "dev-clean" / "174" / "50561" / "take2.flac",
    )
    with pytest.raises(ValueError, match=r"take2.flac: LibriSpeech utterances are named"):
        ready(copy)
    (tmp_path / "empty" / "dev-clean").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"\['train', 'valid', 'test'\] have no clip \(train: int\(0.8 n\)"):
        ready(tmp_path / "empty")
