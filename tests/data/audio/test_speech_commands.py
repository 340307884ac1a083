"""Tests for SpeechCommandsDataModule (v2: 35 words; v1: TFDS's or SUPERB's 12 classes) on tiny copies of
the archives (tests/layouts/SpeechCommandsDataModule.py) and of the Hugging Face copy (tests/layouts/hub.py).
"""

import runpy
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.data.audio.speech_commands import (
    TFDS_V1_CLASSES,
    V1_CLASSES,
    V1_COMMANDS,
    SpeechCommandsDataModule,
    window_count,
)
from ssl_lightning.data.sampling import WeightedDistributedSampler

LAYOUTS = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "SpeechCommandsDataModule.py")))
"""The layout writer: `make(root)` and its helpers."""
hub = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "hub.py")))
HF_LABELS = (
    *("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "zero", "one", "two", "three"),
    *("four", "five", "six", "seven", "eight", "nine", "bed", "bird", "cat", "dog", "happy", "house"),
    *("marvin", "sheila", "tree", "wow", "backward", "forward", "follow", "learn", "visual"),
    *("_unknown_", "_silence_"),
)
"""The ClassLabel names of google/speech_commands v0.02, in its order (LABELS_V2 of its script)."""


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> SimpleNamespace:
    """The HARES layout (`parent`: v0.02 archive and test set side by side), its `archive` folder, and a
    v0.01 test set elsewhere (`test_v0_01`), shared read-only."""
    base = tmp_path_factory.mktemp("speech_commands")
    parent = Path(layout.make(base)["root"])
    test_v0_01 = layout.write_test_set(base / "elsewhere" / "speech_commands_test_set_v0.01")
    return SimpleNamespace(parent=parent, archive=parent / "speech_commands_v0.02", test_v0_01=test_v0_01)


def ready(root: Path | None = None, **kwargs) -> SpeechCommandsDataModule:
    datamodule = SpeechCommandsDataModule(None if root is None else str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def _clips(datamodule: SpeechCommandsDataModule, split: str) -> list[tuple[str, str]]:
    """(`<folder>/<file>`, class name) of every item of a split."""
    dataset = datamodule.dataset(split, "random_crop")
    labels = [datamodule.classes[int(dataset[i]["label"])] for i in range(len(dataset))]
    return [(f"{p.parent.name}/{p.name}", c) for p, c in zip(dataset.paths, labels, strict=True)]


def _speakers(clips: list[tuple[str, str]]) -> set[str]:
    return {name.split("/")[1].split("_")[0] for name, _ in clips if "nohash" in name}


@pytest.mark.parametrize("root", ["archive", "parent"])
def test_v2_has_35_words_and_the_list_splits(roots, root):
    datamodule = ready(getattr(roots, root))
    assert datamodule.num_classes == 35 and datamodule.label_type == "single"
    assert datamodule.classes == tuple(sorted(datamodule.classes)) and "visual" in datamodule.classes
    speakers = {"train": "0a1b2c3d", "valid": "1f2e3d4c", "test": "9e8d7c6b"}  # the layout's lists
    for split, speaker in speakers.items():
        clips = _clips(datamodule, split)
        assert len(clips) == 35 and _speakers(clips) == {speaker}
        assert all(name.split("/")[0] == label for name, label in clips)  # the label is the word folder
    assert datamodule.canonical and "validation_list.txt / testing_list.txt" in datamodule.split_note


@pytest.mark.parametrize(
    ("num_samples", "windows"), [(40000, 3), (51200, 5), (32000, 2), (32001, 3), (16001, 1), (16000, 0)]
)
def test_window_count_is_tfds_starts_before_the_end_minus_one_second(num_samples, windows):
    # TFDS: range(0, len(samples) - 16000, 8000), e.g. 2.0 s -> starts 0, 0.5 s (a start at 1.0 s is left out)
    assert window_count(num_samples, 16000) == windows


def test_v1_tfds_build_from_the_hares_layout(roots):
    datamodule = ready(roots.parent, version=1, v1_build="tfds")
    assert datamodule.classes == TFDS_V1_CLASSES and datamodule.classes[:3] == ("down", "go", "left")
    train, valid, test = (_clips(datamodule, split) for split in ("train", "valid", "test"))
    # words: speaker 0 in train, speaker 1 (validation_list) in valid, testing_list's speaker 2 unused;
    # _silence_: white_noise 2.5 s (3 windows) + pink_noise 3.2 s (5) in train, running_tap 2.0 s (2) in valid
    assert (len(train), len(valid), len(test)) == (35 + 8, 35 + 2, 24)
    assert _speakers(train) == {"0a1b2c3d"} and _speakers(valid) == {"1f2e3d4c"}
    silence = [name for name, label in train if label == "_silence_"]
    assert silence == ["_background_noise_/pink_noise.wav"] * 5 + ["_background_noise_/white_noise.wav"] * 3
    assert [name for name, label in valid if label == "_silence_"] == [
        "_background_noise_/running_tap.wav"
    ] * 2
    labels = dict(train)
    assert (
        labels["yes/0a1b2c3d_nohash_0.wav"] == "yes" and labels["visual/0a1b2c3d_nohash_0.wav"] == "_unknown_"
    )
    assert sum(label == "_unknown_" for label in labels.values()) == 25
    assert all(name.split("/")[0] == label for name, label in test)  # speech_commands_test_set_v0.02, found
    assert datamodule.canonical and "TFDS build" in datamodule.split_note
    assert "speech_commands_test_set_v0.02" in datamodule.split_note


def test_v1_tfds_silence_items_are_the_one_second_windows(roots):
    datamodule = ready(roots.parent, version=1, v1_build="tfds", batch_size=64)
    tap, _ = soundfile.read(str(roots.archive / "_background_noise_" / "running_tap.wav"), dtype="float32")
    batch = next(iter(datamodule.val_dataloader()))  # 35 word clips, then the 2 windows
    silence = batch["label"] == TFDS_V1_CLASSES.index("_silence_")
    assert silence.sum() == 2 and batch["clip_id"][silence].tolist() == [35, 36]  # one item per window
    torch.testing.assert_close(
        batch["audio"][silence], torch.from_numpy(np.stack([tap[:16000], tap[8000:24000]]))
    )
    assert not batch["padding_mask"][silence].any()


def test_v1_tfds_batches_and_subclips(roots):
    datamodule = ready(roots.parent, version=1, v1_build="tfds", batch_size=64, train_seconds=0.5)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (43, 8000) and batch["label"].dtype == torch.int64
    datamodule = ready(roots.parent, version=1, v1_build="tfds", clip_seconds=0.4)
    clip_id = torch.cat([b["clip_id"] for b in datamodule.subclip_dataloader("train")])
    # sub-clips per item = ceil(length / 0.4 s): 1 s words and windows 3, the 0.6 s words (every third) 2
    counts = [2 if w % 3 == 0 else 3 for w in range(35)] + [3] * 8
    assert clip_id.tolist() == [i for i, count in enumerate(counts) for _ in range(count)]


def test_v1_tfds_from_v0_01_is_not_canonical_and_needs_running_tap(tmp_path):
    archive = layout.write_speech_commands(tmp_path / "speech_commands_v0.01", words=(*V1_COMMANDS, "bed"))
    layout.write_test_set(tmp_path / "speech_commands_test_set_v0.01")
    datamodule = ready(tmp_path, version=1, v1_build="tfds")
    assert len(_clips(datamodule, "train")) == 11 + 8 and len(_clips(datamodule, "test")) == 24
    assert not datamodule.canonical and "(v0.01)" in datamodule.split_note
    assert "not HARES's" in datamodule.split_note
    (archive / "_background_noise_" / "running_tap.wav").unlink()
    with pytest.raises(FileNotFoundError, match="running_tap.wav not found: TFDS's build takes valid"):
        ready(tmp_path, version=1, v1_build="tfds")


def test_v1_superb_maps_words_to_12_classes_with_whole_noise_recordings(roots):
    datamodule = ready(roots.archive, version=1, test_root=str(roots.test_v0_01))
    assert datamodule.classes == V1_CLASSES and datamodule.num_classes == 12
    train = _clips(datamodule, "train")
    assert len(train) == 35 + 3  # one clip per word and the 3 background-noise recordings
    labels = dict(train)
    assert labels["yes/0a1b2c3d_nohash_0.wav"] == "yes" and labels["go/0a1b2c3d_nohash_0.wav"] == "go"
    assert labels["bed/0a1b2c3d_nohash_0.wav"] == labels["visual/0a1b2c3d_nohash_0.wav"] == "_unknown_"
    assert labels["_background_noise_/running_tap.wav"] == "_silence_"
    assert sum(label == "_unknown_" for label in labels.values()) == 25
    valid = dict(_clips(datamodule, "valid"))
    assert valid["_background_noise_/white_noise.wav"] == "_silence_"  # SUPERB: in train and valid
    test = _clips(datamodule, "test")  # the separate test archive, 2 clips per class folder
    assert len(test) == 24 and all(name.split("/")[0] == label for name, label in test)
    assert not datamodule.canonical and "v1_build='tfds'" in datamodule.split_note


def test_v1_superb_batches_pad_short_clips_and_split_long_noise(roots):
    datamodule = ready(roots.archive, version=1, test_root=str(roots.test_v0_01), batch_size=64)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (38, 16000) and batch["label"].dtype == torch.int64
    short = batch["padding_mask"].any(1)  # 0.6 s clips (every third word) padded to 1 s
    assert short.sum() == 12 and (batch["padding_mask"][short].sum(1) == 6400).all()
    valid = next(iter(datamodule.val_dataloader()))
    silence = valid["label"] == V1_CLASSES.index("_silence_")
    # the noise recordings (2.5, 3.2, 2.0 s) are cut into 3 + 4 + 2 sub-clips of 1 s sharing their clip_id
    assert silence.sum() == 9 and valid["clip_id"][silence].unique().numel() == 3


def test_v1_weighted_sampling_balances_the_classes(roots):
    datamodule = ready(roots.archive, version=1, weighted_sampling=True, seed=1)
    loader = datamodule.train_dataloader()
    assert isinstance(loader.sampler.inner, WeightedDistributedSampler)  # under the resumable sampler
    label = datamodule.dataset("train", "random_crop").label_pairs()[1]  # the class of each clip
    assert label.shape == (38,)
    draws = []
    for epoch in range(300):
        loader.sampler.set_epoch(epoch)
        draws += [index for index, _ in loader.sampler]  # (index, item seed) pairs
    frequency = torch.bincount(label[torch.tensor(draws)], minlength=12).double() / len(draws)
    # 25 unknown clips and 3 silence recordings vs 1 clip of each command: each class drawn about 1/12
    assert ((frequency - 1 / 12).abs() < 0.012).all(), frequency


def test_v1_test_split_needs_a_test_set(roots):
    datamodule = ready(roots.archive, version=1)
    assert len(datamodule.dataset("train", "random_crop")) == 38
    with pytest.raises(ValueError, match="speech_commands_test_set_v0.01.tar.gz.*test_root"):
        datamodule.test_dataloader()
    tfds = ready(roots.archive, version=1, v1_build="tfds")  # the archive alone: no test set beside it
    assert not tfds.canonical
    with pytest.raises(ValueError, match="speech_commands_test_set_v0.02.tar.gz.*test_root"):
        tfds.test_dataloader()


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
        ready(roots.archive, version=1, test_root=str(bad_test))
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


def _hub_tables() -> dict:
    """google/speech_commands v0.02 as `datasets` gives it: train with 2 background rows (2.5 s and 3.2 s),
    validation with running_tap (2.0 s), test (the 12-class archive: `_unknown_` rows carry their word)."""
    rows = {
        "train": [("yes", 1.0), ("bed", 0.6), ("visual", 1.0), ("_silence_", 2.5), ("_silence_", 3.2)],
        "validation": [("_silence_", 2.0), ("no", 1.0), ("cat", 1.0)],
        "test": [("yes", 1.0), ("backward", 1.0), ("_silence_", 1.0)],
    }
    tables = {}
    for split, entries in rows.items():
        waveforms = [
            layout.noise(seconds, i) if word == "_silence_" else hub.tone(300 + 40 * i, seconds, 16000)
            for i, (word, seconds) in enumerate(entries)
        ]
        columns = {
            "file": [f"{word}/{i}.wav" for i, (word, _) in enumerate(entries)],
            "label": [HF_LABELS.index(word) for word, _ in entries],
            "is_unknown": [word not in V1_COMMANDS and word != "_silence_" for word, _ in entries],
        }
        table = hub.audio_table(columns, waveforms, 16000)
        tables[split] = table.cast_column("label", datasets.ClassLabel(names=list(HF_LABELS)))
    return tables


@pytest.fixture(scope="module")
def hub_tables() -> dict:
    return _hub_tables()


def test_hub_v1_is_the_tfds_build(hub_tables):
    datamodule = ready(hub=hub_tables, version=1, v1_build="tfds", batch_size=64)
    train = next(iter(datamodule.subclip_dataloader("train")))
    names = [TFDS_V1_CLASSES[i] for i in train["label"]]
    assert names == ["yes", "_unknown_", "_unknown_"] + ["_silence_"] * (3 + 5)  # the rows cut into windows
    noise = torch.from_numpy(layout.noise(3.2, 4).astype(np.float32))
    window_4 = train["audio"][-1]  # the 3.2 s row's last window: 2.0 s to 3.0 s
    torch.testing.assert_close(window_4, noise[32000:48000], atol=1 / 32768, rtol=0)
    valid = [TFDS_V1_CLASSES[i] for i in next(iter(datamodule.val_dataloader()))["label"]]
    assert valid == ["no", "_unknown_", "_silence_", "_silence_"]  # whole rows, then running_tap's windows
    test = [TFDS_V1_CLASSES[i] for i in next(iter(datamodule.test_dataloader()))["label"]]
    assert test == ["yes", "_unknown_", "_silence_"]  # test's 1 s silence rows stay whole
    assert datamodule.canonical and "hub" in datamodule.split_note


def test_hub_v2_has_no_test_split(hub_tables):
    datamodule = ready(hub=hub_tables)
    train = [datamodule.classes[int(item["label"])] for item in datamodule.dataset("train", "random_crop")]
    assert train == ["yes", "bed", "visual"]  # the background rows are left out
    assert len(datamodule.dataset("valid", "random_crop")) == 2
    with pytest.raises(ValueError, match="no v2 test split: its test split is the 12-class v1 test archive"):
        datamodule.test_dataloader()
    assert not datamodule.canonical and "not HARES's split" in datamodule.split_note


def test_hub_errors_name_what_is_wrong(hub_tables, roots):
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        SpeechCommandsDataModule()
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        SpeechCommandsDataModule(str(roots.archive), hub=hub_tables)
    with pytest.raises(ValueError, match="hub= serves version=2 or version=1 with v1_build='tfds'"):
        SpeechCommandsDataModule(hub=hub_tables, version=1)
    with pytest.raises(ValueError, match="lack split\\(s\\) \\['validation'\\]"):
        ready(hub={"train": hub_tables["train"], "test": hub_tables["test"]})
    strings = {
        name: table.cast_column("label", datasets.Value("int64")) for name, table in hub_tables.items()
    }
    with pytest.raises(ValueError, match="label column must be a ClassLabel"):
        ready(hub=strings)


def test_bad_arguments_raise_early(roots):
    with pytest.raises(ValueError, match="version must be 1"):
        SpeechCommandsDataModule(str(roots.archive), version=3)
    with pytest.raises(ValueError, match="v1_build must be 'superb' or 'tfds'"):
        SpeechCommandsDataModule(str(roots.archive), version=1, v1_build="hf")
    with pytest.raises(ValueError, match="test_root is for version=1 only"):
        SpeechCommandsDataModule(str(roots.archive), test_root=str(roots.test_v0_01))
