"""Tests for AudioMNISTDataModule on a tiny copy of its layout (tests/layouts/AudioMNISTDataModule.py): DABS's
speaker split, digit labels, 48 kHz serving, canonical and the errors."""

import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile

from ssl_lightning.data.audio.audio_mnist import AudioMNISTDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "AudioMNISTDataModule.py"))
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: speakers 28, 1, 3 (train), 12, 4 (valid), 26, 5 (test)."""
    return Path(layout.make(tmp_path_factory.mktemp("audio_mnist"))["root"])


def ready(root: Path, **kwargs) -> AudioMNISTDataModule:
    datamodule = AudioMNISTDataModule(str(root), **kwargs)
    datamodule.setup()
    return datamodule


def names(datamodule: AudioMNISTDataModule, split: str) -> list[str]:
    dataset = datamodule.dataset(split, "random_crop")
    return [dataset.paths[i].name for i in range(len(dataset))]


def speaker_files(speaker: int) -> list[str]:
    """A speaker's 30 files in name order: per digit, indices 0, 10, 2 (the string order)."""
    return [f"{digit}_{speaker:02d}_{index}.wav" for digit in range(10) for index in (0, 10, 2)]


def test_splits_are_dabs_speaker_lists_in_list_order(root):
    datamodule = ready(root)
    # DABS's lists start 28, 56, 7, 19, 35, 1, ... (train), 12, 47, 59, 15, 27, 41, 4 (valid), 26, 52, 60,
    # 18, 32, 42, 5 (test): of the speakers written, that order is 28, 1, 3 / 12, 4 / 26, 5.
    assert names(datamodule, "train") == speaker_files(28) + speaker_files(1) + speaker_files(3)
    assert names(datamodule, "valid") == speaker_files(12) + speaker_files(4)
    assert names(datamodule, "test") == speaker_files(26) + speaker_files(5)
    assert datamodule.batch_size == 64 and not datamodule.canonical
    assert "train 3/36, valid 2/12, test 2/12" in datamodule.split_note


def test_labels_are_the_digits(root):
    datamodule = ready(root)
    assert datamodule.classes == ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
    assert datamodule.num_classes == 10 and datamodule.label_type == "single"
    dataset = datamodule.dataset("valid", "random_crop")
    labels = [int(dataset[i]["label"]) for i in range(len(dataset))]
    assert labels == [digit for _ in range(2) for digit in range(10) for _ in range(3)]


def test_clips_are_served_at_48_khz(root):
    datamodule = ready(root, batch_size=3)
    assert datamodule.sample_rate == 48000
    batch = next(iter(datamodule.test_dataloader()))  # 0_26_0 (0.05 s), 0_26_10 (0.15 s), 0_26_2 (0.1 s)
    assert batch["audio"].shape == (3, 48000)  # 1 s sub-clips at 48 kHz
    assert (~batch["padding_mask"]).sum(dim=1).tolist() == [2400, 7200, 4800]
    stored, rate = soundfile.read(str(root / "data" / "26" / "0_26_0.wav"), dtype="float32")
    assert rate == 48000
    np.testing.assert_array_equal(batch["audio"][0, :2400].numpy(), stored)


def test_canonical_with_all_sixty_speakers(tmp_path):
    root = layout.write_audio_mnist(tmp_path / "AudioMNIST-master")
    for speaker in range(1, 61):
        folder = root / "data" / f"{speaker:02d}"
        if not folder.is_dir():
            folder.mkdir()
            soundfile.write(str(folder / f"3_{speaker:02d}_0.wav"), np.zeros(480), 48000, "PCM_16")
    datamodule = ready(root)
    assert datamodule.canonical and "train 36/36, valid 12/12, test 12/12" in datamodule.split_note
    sizes = [len(datamodule.dataset(split, "random_crop")) for split in ("train", "valid", "test")]
    assert sizes == [90 + 33, 60 + 10, 60 + 10]  # the layout's speakers, and one file of each other one


def test_errors_say_what_to_do(tmp_path, root):
    with pytest.raises(
        FileNotFoundError, match=r"data folder not found.*git clone https://github.com/soerenab"
    ):
        ready(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError, match=r"AudioMNIST-master/data exists: pass root=.*AudioMNIST-master"
    ):
        ready(root.parent)
    copy = shutil.copytree(root, tmp_path / "copy")
    shutil.copy(copy / "data" / "01" / "0_01_0.wav", copy / "data" / "01" / "0_02_0.wav")
    with pytest.raises(ValueError, match=r"0_02_0.wav: .*with the folder's speaker \(01\)"):
        ready(copy)
    (copy / "data" / "01" / "0_02_0.wav").unlink()
    for speaker in ("26", "05"):
        shutil.rmtree(copy / "data" / speaker)
    with pytest.raises(ValueError, match=r"\['test'\] have no clip \(test: the folders 26, 52, 60"):
        ready(copy)
