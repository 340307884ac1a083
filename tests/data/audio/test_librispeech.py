"""Tests for LibriSpeechDataModule (and the crops of UnlabeledAudioDataModule) on a tiny copy of the
LibriSpeech layout (tests/layouts/LibriSpeechDataModule.py): splits, length filter, crops, normalisation,
padding, determinism, resume and the errors."""

from __future__ import annotations

import runpy
import shutil
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.data import LibriSpeechDataModule

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "LibriSpeechDataModule.py"))
)
TINY = {"max_sample_size": 16000, "min_sample_size": 8000}
"""The tiny overlay's crops: 0.25 s files (4000 samples) are left out, 1.5 s ones (24000) cropped to 1 s."""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return Path(layout.make(tmp_path_factory.mktemp("librispeech"))["root"])


def ready(root: Path, **kwargs) -> LibriSpeechDataModule:
    datamodule = LibriSpeechDataModule(str(root), **(TINY | kwargs))
    datamodule.setup("fit")
    return datamodule


def decoded(path: Path) -> np.ndarray:
    return soundfile.read(str(path), dtype="float32")[0]


def test_splits_are_the_960h_subsets_and_dev_clean(root):
    datamodule = ready(root)
    train = [Path(p) for p in datamodule.dataset("train").paths]
    valid = [Path(p) for p in datamodule.dataset("valid").paths]
    # 3 subsets x 2 speakers x the 2 utterances of 0.75 s and 1.5 s (the 0.25 s ones are too short)
    assert len(train) == 12 and len(valid) == 4
    assert {p.parents[2].name for p in train} == {"train-clean-100", "train-clean-360", "train-other-500"}
    assert {p.parents[2].name for p in valid} == {"dev-clean"}
    assert all(p.name.startswith(f"{p.parents[1].name}-{p.parent.name}-") for p in train + valid)
    assert not any(p.name.endswith("-0000.flac") for p in train + valid)
    assert "84-121123-0001.flac" in {p.name for p in valid}


def test_min_sample_size_none_keeps_every_file(root):
    datamodule = ready(root, min_sample_size=None, train_subsets=["train-clean-100"], valid_subset=None)
    assert len(datamodule.dataset("train")) == 6 and datamodule.val_dataloader() == []
    with pytest.raises(ValueError, match=r"has no split 'valid'"):
        datamodule.dataset("valid")


def test_training_batches_are_random_crops_padded_to_the_batch(root):
    datamodule = ready(root, batch_size=4)
    paths = datamodule.dataset("train").paths
    offsets = []
    for batch in datamodule.train_dataloader():
        audio, mask = batch["audio"], batch["padding_mask"]
        assert audio.dtype == torch.float32 and mask.dtype == torch.bool and audio.shape == mask.shape
        assert audio.shape[1] <= 16000 and batch["clip_id"].dtype == torch.int64
        for row, clip in enumerate(batch["clip_id"].tolist()):
            wave = decoded(paths[clip])
            length = min(wave.size, 16000)  # 0.75 s kept whole, 1.5 s cropped to 1 s
            assert mask[row].tolist() == [False] * length + [True] * (audio.shape[1] - length)
            assert (audio[row, length:] == 0).all()
            windows = np.lib.stride_tricks.sliding_window_view(wave, length)
            matches = np.flatnonzero((windows == audio[row, :length].numpy()).all(axis=1))
            assert matches.size  # a window of the file
            offsets += [int(matches[0])] if wave.size > 16000 else []
    assert len(offsets) == 6 and len(set(offsets)) > 1  # the six 1.5 s files, cropped at random offsets


def test_valid_crops_are_centred_and_normalize_uses_the_whole_file(root):
    plain, normed = ready(root), ready(root, normalize=True)
    dataset, normed_dataset = plain.dataset("valid"), normed.dataset("valid")
    for index in range(len(dataset)):
        wave = decoded(dataset.paths[index]).astype(np.float64)
        standardised = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-5)  # F.layer_norm over the file
        start = max(wave.size - 16000, 0) // 2  # 24000 samples: offset 4000
        expected = slice(start, start + min(wave.size, 16000))
        assert np.allclose(dataset[index]["audio"].numpy(), wave[expected], atol=1e-6)
        assert np.allclose(normed_dataset[index]["audio"].numpy(), standardised[expected], atol=1e-4)
    batch = next(iter(plain.val_dataloader()))
    assert batch["clip_id"].tolist() == [0, 1, 2, 3]  # in order


def test_whole_files_without_max_sample_size(root):
    datamodule = ready(root, max_sample_size=None, min_sample_size=None, batch_size=3)
    batch = next(iter(datamodule.val_dataloader()))  # 0.25, 0.75 and 1.5 s of speaker 84
    assert batch["audio"].shape == (3, 24000)
    assert batch["padding_mask"].sum(dim=1).tolist() == [20000, 12000, 0]


def test_crops_and_order_are_seeded_and_resume_exactly(root):
    def batches(datamodule, count):
        return [(b["clip_id"], b["audio"]) for b in islice(datamodule.train_dataloader(), count)]

    reference = batches(ready(root, batch_size=2), 6)
    again = batches(ready(root, batch_size=2), 6)
    assert all(
        torch.equal(a[1], b[1]) and torch.equal(a[0], b[0]) for a, b in zip(reference, again, strict=True)
    )
    other = batches(ready(root, batch_size=2, seed=1), 1)
    assert not torch.equal(reference[0][0], other[0][0])

    interrupted = ready(root, batch_size=2)
    first = batches(interrupted, 2)
    assert interrupted.state_dict() == {"train_loader": {"epoch": 0, "consumed": 2}}
    resumed = ready(root, batch_size=2)
    resumed.load_state_dict(interrupted.state_dict())
    rest = batches(resumed, 4)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first + rest, reference, strict=True))


def test_two_workers_give_the_same_batches(root):
    main = [b["audio"] for b in ready(root, batch_size=3).train_dataloader()]
    datamodule = ready(root, batch_size=3, num_workers=2)
    workers = [b["audio"] for b in datamodule.train_dataloader()]
    assert all(torch.equal(a, b) for a, b in zip(main, workers, strict=True))
    # stop the persistent workers now: left to a later garbage collection of the datamodule's reference
    # cycle (save_hyperparameters), their queues may be finalized first and each join waits out 5 s
    datamodule._train_loader = None


def test_missing_root_and_subsets_say_where_to_get_them(root, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"LibriSpeech root not found: .*nowhere.*openslr.org/12"):
        ready(tmp_path / "nowhere")
    with pytest.raises(
        FileNotFoundError,
        match=r"subset folder not found: .*train-clean-101\. Download train-clean-101.tar.gz from "
        r"https://www.openslr.org/12",
    ):
        ready(root, train_subsets=["train-clean-101"])
    with pytest.raises(FileNotFoundError, match=r"exists: pass root=.*LibriSpeech\)"):
        ready(root.parent)


def test_other_sample_rates_are_named(root, tmp_path):
    copy = Path(shutil.copytree(root / "dev-clean", tmp_path / "dev-clean"))
    bad = copy / "84" / "121123" / "84-121123-0001.flac"
    soundfile.write(str(bad), np.zeros(12000), 8000)
    with pytest.raises(
        ValueError,
        match=r"1 of 6 audio files are not at sample_rate=16000 Hz: .*84-121123-0001"
        r"\.flac \(8000 Hz\); resample",
    ):
        ready(tmp_path, train_subsets=["dev-clean"], valid_subset=None)


def test_too_short_files_and_bad_sizes_are_reported(root):
    with pytest.raises(
        ValueError,
        match=r"split\(s\) \['train', 'valid'\] have no clip .*18 of 18 files are "
        r"shorter than min_sample_size=30000",
    ):
        ready(root, max_sample_size=None, min_sample_size=30000)  # the longest file has 24000 samples
    with pytest.raises(ValueError, match="min_sample_size 32000 is above max_sample_size 16000"):
        LibriSpeechDataModule(str(root), max_sample_size=16000)
    with pytest.raises(ValueError, match="train_subsets must be a non-empty list"):
        LibriSpeechDataModule(str(root), train_subsets="train-clean-100")
