"""Tests for SpeechCommandsDataModule (v2: 35 words; v1: SUPERB's 12 classes) on tiny copies of the
archives (tests/layouts/SpeechCommandsDataModule.py)."""

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssl_lightning.data import SpeechCommandsDataModule, WeightedDistributedSampler
from ssl_lightning.data.audio.speech_commands import V1_CLASSES, V1_COMMANDS

layout = SimpleNamespace(
    **runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "SpeechCommandsDataModule.py"))
)
"""The layout writer: `make(root)` and its helpers."""


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> tuple[Path, Path]:
    """(v0.02 root, v0.01 test-set root) of the tiny layout, shared read-only."""
    base = tmp_path_factory.mktemp("speech_commands")
    root = Path(layout.make(base)["root"])
    return root, base / "speech_commands_test_set_v0.01"


def ready(root: Path, **kwargs) -> SpeechCommandsDataModule:
    datamodule = SpeechCommandsDataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def _clips(datamodule: SpeechCommandsDataModule, split: str) -> list[tuple[str, str]]:
    """(`<folder>/<file>`, class name) of every clip of a split."""
    dataset = datamodule.dataset(split, "random_crop")
    labels = [datamodule.classes[int(dataset[i]["label"])] for i in range(len(dataset))]
    return [(f"{p.parent.name}/{p.name}", c) for p, c in zip(dataset.paths, labels, strict=True)]


def test_v2_has_35_words_and_the_list_splits(roots):
    datamodule = ready(roots[0])
    assert datamodule.num_classes == 35 and datamodule.label_type == "single"
    assert datamodule.classes == tuple(sorted(datamodule.classes)) and "visual" in datamodule.classes
    speakers = {"train": "0a1b2c3d", "valid": "1f2e3d4c", "test": "9e8d7c6b"}  # the layout's lists
    for split, speaker in speakers.items():
        clips = _clips(datamodule, split)
        assert len(clips) == 35
        assert all(name.split("/")[1].startswith(speaker) for name, _ in clips)
        assert all(name.split("/")[0] == label for name, label in clips)  # the label is the word folder


def test_v1_maps_words_to_12_classes_with_unknown_and_silence(roots):
    datamodule = ready(roots[0], version=1, test_root=str(roots[1]))
    assert datamodule.classes == V1_CLASSES and datamodule.num_classes == 12
    train = _clips(datamodule, "train")
    assert len(train) == 35 + 2  # one clip per word and the 2 background-noise recordings
    labels = dict(train)
    assert labels["yes/0a1b2c3d_nohash_0.wav"] == "yes" and labels["go/0a1b2c3d_nohash_0.wav"] == "go"
    assert labels["bed/0a1b2c3d_nohash_0.wav"] == labels["visual/0a1b2c3d_nohash_0.wav"] == "_unknown_"
    assert labels["_background_noise_/running_tap.wav"] == "_silence_"
    assert sum(label == "_unknown_" for label in labels.values()) == 25
    valid = dict(_clips(datamodule, "valid"))
    assert valid["_background_noise_/white_noise.wav"] == "_silence_"  # SUPERB: in train and valid
    test = _clips(datamodule, "test")  # the separate test archive, 2 clips per class folder
    assert len(test) == 24 and all(name.split("/")[0] == label for name, label in test)


def test_batches_pad_short_clips_and_split_long_noise(roots):
    datamodule = ready(roots[0], version=1, test_root=str(roots[1]), batch_size=64)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (37, 16000) and batch["label"].dtype == torch.int64
    short = batch["padding_mask"].any(1)  # 0.6 s clips (every third word) padded to 1 s
    assert short.sum() == 12 and (batch["padding_mask"][short].sum(1) == 6400).all()
    valid = next(iter(datamodule.val_dataloader()))
    silence = valid["label"] == V1_CLASSES.index("_silence_")
    # each 2.5 s noise recording is cut into 3 sub-clips of 1 s sharing its clip_id
    assert silence.sum() == 6 and valid["clip_id"][silence].unique().numel() == 2


def test_v1_weighted_sampling_balances_the_classes(roots):
    datamodule = ready(roots[0], version=1, test_root=str(roots[1]), weighted_sampling=True, seed=1)
    loader = datamodule.train_dataloader()
    assert isinstance(loader.sampler.inner, WeightedDistributedSampler)  # under the resumable sampler
    label = datamodule.dataset("train", "random_crop").label_pairs()[1]  # the class of each clip
    assert label.shape == (37,)
    draws = []
    for epoch in range(300):
        loader.sampler.set_epoch(epoch)
        draws += [index for index, _ in loader.sampler]  # (index, item seed) pairs
    frequency = torch.bincount(label[torch.tensor(draws)], minlength=12).double() / len(draws)
    # 25 unknown clips vs 1 clip of each command: balanced draws give each class about 1/12
    assert ((frequency - 1 / 12).abs() < 0.012).all(), frequency


def test_v1_test_split_needs_test_root(roots):
    datamodule = ready(roots[0], version=1)
    assert len(datamodule.dataset("train", "random_crop")) == 37
    with pytest.raises(ValueError, match="speech_commands_test_set_v0.01.tar.gz.*test_root"):
        datamodule.test_dataloader()


def test_wrong_or_missing_layouts_say_what_is_wrong(tmp_path, roots):
    with pytest.raises(FileNotFoundError, match="Speech Commands root not found.*v0.02.tar.gz"):
        ready(tmp_path / "nowhere")
    v1_root = layout.write_speech_commands(tmp_path / "v1", words=("yes", "no", "bed"))
    with pytest.raises(FileNotFoundError, match="lacks the word folder\\(s\\) \\['backward'"):
        ready(v1_root)
    with pytest.raises(FileNotFoundError, match="lacks the word folder\\(s\\) \\['down', 'go'"):
        ready(v1_root, version=1)
    bad_test = layout.write_test_set(tmp_path / "test")
    (bad_test / "_silence_").rename(tmp_path / "silence")
    with pytest.raises(ValueError, match="exactly the 12 class folders.*lacks \\['_silence_'"):
        ready(roots[0], version=1, test_root=str(bad_test))
    v0_01 = layout.write_speech_commands(tmp_path / "v0.01", words=(*V1_COMMANDS, "bed"))
    assert ready(v0_01, version=1).num_classes == 12  # v1 needs the 10 commands, any other words
    (v0_01 / "testing_list.txt").unlink()
    with pytest.raises(FileNotFoundError, match="testing_list.txt not found"):
        ready(v0_01, version=1)


def test_list_entries_without_audio_are_counted(tmp_path):
    root = layout.write_speech_commands(tmp_path / "v2")
    (root / "cat" / "1f2e3d4c_nohash_0.wav").unlink()
    with pytest.raises(
        FileNotFoundError, match="1 of 35 clips of .*validation_list.txt.*cat/1f2e3d4c_nohash_0"
    ):
        ready(root)
    with pytest.warns(UserWarning, match="1 of 35 clips"):
        datamodule = ready(root, on_error="skip")
    assert len(datamodule.dataset("valid", "random_crop")) == 34


@pytest.mark.parametrize(("version", "split"), [(2, "valid"), (2, "test"), (1, "valid")])
def test_an_empty_list_file_names_the_split_and_the_list(tmp_path, version, split):
    root = layout.write_speech_commands(tmp_path / "sc")
    listed = root / ("validation_list.txt" if split == "valid" else "testing_list.txt")
    listed.write_text("")
    with pytest.raises(ValueError, match=rf"split\(s\) \['{split}'\] have no clip \({split}: {listed}\)"):
        ready(root, version=version)


def test_bad_arguments_raise_early(roots):
    with pytest.raises(ValueError, match="version must be 1"):
        SpeechCommandsDataModule(str(roots[0]), version=3)
    with pytest.raises(ValueError, match="test_root is for version=1 only"):
        SpeechCommandsDataModule(str(roots[0]), test_root=str(roots[1]))
