"""Tests for AudioFolderDataModule on a tiny folder of audio files (tests/layouts/AudioFolderDataModule.py):
the recursive listing, the seeded valid split, batches and errors (crops: test_librispeech.py, same base)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import soundfile
import torch

from ssl_lightning.data import AudioFolderDataModule
from ssl_lightning.data.audio.folder import find_audio_files

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "AudioFolderDataModule.py"))
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return Path(layout.make(tmp_path_factory.mktemp("audio_folder"))["root"])


def ready(root: Path, **kwargs) -> AudioFolderDataModule:
    datamodule = AudioFolderDataModule(str(root), **({"min_sample_size": None} | kwargs))
    datamodule.setup("fit")
    return datamodule


def names(datamodule: AudioFolderDataModule, split: str) -> list[str]:
    return [str(Path(path).relative_to(datamodule.root)) for path in datamodule.dataset(split).paths]


def test_every_audio_file_is_found_recursively(root):
    found = [str(path.relative_to(root)) for path in find_audio_files(root)]
    assert found == sorted(layout.FILES)  # upper-case endings in, notes.txt and song.mp3 out
    datamodule = ready(root, valid_fraction=0.0)
    assert names(datamodule, "train") == sorted(layout.FILES) and datamodule.val_dataloader() == []


def test_valid_split_is_a_seeded_share_of_the_files(root):
    splits = {seed: ready(root, valid_fraction=0.3, seed=seed) for seed in (0, 1)}
    valid = names(splits[0], "valid")
    assert len(valid) == 3 and len(names(splits[0], "train")) == 7
    assert sorted(valid + names(splits[0], "train")) == sorted(layout.FILES)
    assert names(ready(root, valid_fraction=0.3, seed=0), "valid") == valid
    assert names(splits[1], "valid") != valid
    assert len(names(ready(root, valid_fraction=0.01), "valid")) == 1  # at least one file


def test_batches_of_wav_flac_and_ogg(root):
    datamodule = ready(root, valid_fraction=0.0, max_sample_size=16000, batch_size=10)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == batch["padding_mask"].shape == (10, 16000)
    paths = datamodule.dataset("train").paths
    for row, clip in enumerate(batch["clip_id"].tolist()):
        frames = soundfile.info(str(paths[clip])).frames  # 4000, 12000 or 24000
        assert int((~batch["padding_mask"][row]).sum()) == min(frames, 16000)
    assert batch["audio"].dtype == torch.float32 and batch["audio"].abs().max() > 0.1


def test_min_sample_size_and_errors(root, tmp_path):
    assert len(ready(root, valid_fraction=0.0, min_sample_size=8000).dataset("train")) == 6  # 4 of 0.25 s out
    with pytest.raises(FileNotFoundError, match=r"audio folder not found: root=.*nowhere"):
        ready(tmp_path / "nowhere")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "a.mp3").write_text("x")
    with pytest.raises(
        FileNotFoundError, match=r"no audio files under .*empty \(endings \('.wav', '.flac', '.ogg'\)"
    ):
        ready(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"valid_fraction must lie in \[0, 1\), got 1"):
        AudioFolderDataModule(str(root), valid_fraction=1)
