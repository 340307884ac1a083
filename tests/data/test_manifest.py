"""Tests for manifest reading and ManifestAudioDataset: crops, sub-clips, labels and bad files."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.audio import AudioDecodeError
from ssl_lightning.data import ManifestAudioDataset, read_manifest

SR = 16000
CLASSES = ("a", "b", "c")


def write_ramp(path: Path, num_samples: int, sample_rate: int = SR) -> np.ndarray:
    """A wav whose sample i is (i mod 1000) / 1000 (exact in 16 bits up to quantisation): easy to locate."""
    samples = (np.arange(num_samples) % 1000 / 1000.0).astype(np.float32)
    soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")
    return samples


@pytest.fixture
def clips(tmp_path) -> list[tuple[Path, tuple[str, ...]]]:
    """Three clips of 1.0 s, 2.5 s and 0.4 s with labels a, b, c (multi-label: a;b for the first)."""
    lengths = [SR, int(2.5 * SR), int(0.4 * SR)]
    paths = [tmp_path / f"{i}.wav" for i in range(3)]
    for path, length in zip(paths, lengths, strict=True):
        write_ramp(path, length)
    return list(zip(paths, [("a",), ("b",), ("c",)], strict=True))


def test_read_manifest_resolves_paths_and_splits_labels(tmp_path):
    (tmp_path / "manifest.csv").write_text(
        "path,split,label\ntrain/0.wav,train,a;c\ntest/1.wav,test,b\nx.wav,train,\n"
    )
    rows = read_manifest(tmp_path / "manifest.csv", CLASSES)
    assert [(row.path, row.split, row.labels) for row in rows] == [
        (tmp_path / "train/0.wav", "train", ("a", "c")),
        (tmp_path / "test/1.wav", "test", ("b",)),
        (tmp_path / "x.wav", "train", ()),
    ]


def test_read_manifest_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        read_manifest(tmp_path / "nowhere.csv")
    (tmp_path / "m.csv").write_text("path,label\n0.wav,a\n")
    with pytest.raises(ValueError, match="lacks column.*'split'"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.csv").write_text("path,split,label\n0.wav,train,a\n1.wav,train,zebra\n")
    with pytest.raises(ValueError, match="line 3 \\(1.wav\\).*'zebra'"):
        read_manifest(tmp_path / "m.csv", CLASSES)
    (tmp_path / "m.csv").write_text("")
    with pytest.raises(ValueError, match="lacks column"):
        read_manifest(tmp_path / "m.csv")


def test_subclips_index_content_and_padding(clips):
    dataset = ManifestAudioDataset(clips, CLASSES, "single", num_samples=SR, mode="subclips")
    # 1.0 s -> 1 sub-clip, 2.5 s -> 3 (the last half padded), 0.4 s -> 1 (padded)
    assert len(dataset) == 5
    items = [dataset[i] for i in range(5)]
    assert [int(item["clip_id"]) for item in items] == [0, 1, 1, 1, 2]
    assert [int(item["label"]) for item in items] == [0, 1, 1, 1, 2]
    assert all(item["label"].dtype == torch.int64 and item["label"].ndim == 0 for item in items)
    assert [int(item["padding_mask"].sum()) for item in items] == [0, 0, 0, SR // 2, SR - int(0.4 * SR)]
    ramp = torch.arange(int(2.5 * SR)) % 1000 / 1000.0
    torch.testing.assert_close(items[2]["audio"], ramp[SR : 2 * SR], atol=1 / 32767, rtol=0)
    assert torch.all(items[3]["audio"][SR // 2 :] == 0)


def test_random_crop_items(clips):
    dataset = ManifestAudioDataset(clips, CLASSES, "single", num_samples=int(0.5 * SR), mode="random_crop")
    assert len(dataset) == 3
    torch.manual_seed(0)
    first = [dataset[1]["audio"] for _ in range(4)]
    assert all(crop.shape == (SR // 2,) and crop.dtype == torch.float32 for crop in first)
    assert not all(torch.equal(first[0], crop) for crop in first[1:])  # a fresh crop at every read
    torch.manual_seed(0)
    assert all(torch.equal(a, dataset[1]["audio"]) for a in first)  # reproducible from the seed
    short = dataset[2]  # 0.4 s clip in a 0.5 s crop: padded at the end
    assert int(short["padding_mask"].sum()) == int(0.1 * SR) and not short["padding_mask"][0]


def test_whole_clips_when_num_samples_is_none(clips):
    dataset = ManifestAudioDataset(clips, CLASSES, "single")
    assert dataset[1]["audio"].shape == (int(2.5 * SR),) and not dataset[1]["padding_mask"].any()


def test_resampling_changes_lengths_and_index(clips):
    dataset = ManifestAudioDataset(
        clips, CLASSES, "single", sample_rate=8000, num_samples=8000, mode="subclips"
    )
    assert len(dataset) == 5 and dataset[0]["audio"].shape == (8000,)


def test_multi_hot_and_unlabeled_items(clips):
    items = [(clips[0][0], ("a", "c")), (clips[1][0], ())]
    multi = ManifestAudioDataset(items, CLASSES, "multi", num_samples=SR, mode="subclips")
    assert multi[0]["label"].dtype == torch.float32
    assert multi[0]["label"].tolist() == [1.0, 0.0, 1.0] and multi[1]["label"].tolist() == [0.0, 0.0, 0.0]
    unlabeled = ManifestAudioDataset(items, (), "none", num_samples=SR)
    assert "label" not in unlabeled[0]


def test_label_errors_name_the_clip(clips):
    with pytest.raises(ValueError, match="0.wav.*exactly one label"):
        ManifestAudioDataset([(clips[0][0], ("a", "b"))], CLASSES, "single")
    with pytest.raises(ValueError, match="0.wav.*'zebra'"):
        ManifestAudioDataset([(clips[0][0], ("zebra",))], CLASSES, "multi")
    with pytest.raises(ValueError, match="mode"):
        ManifestAudioDataset(clips, CLASSES, "single", mode="crops")
    with pytest.raises(ValueError, match="num_samples"):
        ManifestAudioDataset(clips, CLASSES, "single", mode="subclips")


@pytest.fixture
def with_bad_files(clips, tmp_path):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF....WAVEthis is not audio")
    return [*clips, (garbage, ("a",)), (tmp_path / "missing.wav", ("b",))]


def test_bad_file_raises_naming_it(with_bad_files):
    with pytest.raises(AudioDecodeError, match="garbage.wav"):
        ManifestAudioDataset(with_bad_files, CLASSES, "single", num_samples=SR, mode="subclips")
    lazy = ManifestAudioDataset(with_bad_files, CLASSES, "single", num_samples=SR, mode="random_crop")
    with pytest.raises(AudioDecodeError, match="garbage.wav"):
        lazy[3]
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        lazy[4]


@pytest.mark.parametrize("mode", ["subclips", "random_crop"])
def test_skip_leaves_bad_files_out_and_counts_them(with_bad_files, mode):
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        dataset = ManifestAudioDataset(
            with_bad_files, CLASSES, "single", num_samples=SR, mode=mode, on_error="skip"
        )
    assert [path.name for path in dataset.skipped] == ["garbage.wav", "missing.wav"]
    assert {int(dataset[i]["clip_id"]) for i in range(len(dataset))} == {0, 1, 2}


def test_skip_with_nothing_readable_raises(with_bad_files):
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no readable clip out of 2"):
        ManifestAudioDataset(with_bad_files[3:], CLASSES, "single", num_samples=SR, on_error="skip")


def test_truncated_file_is_not_padded_silently(clips, tmp_path):
    """A file that shrinks after indexing raises instead of yielding padding for the missing sub-clips."""
    dataset = ManifestAudioDataset(clips, CLASSES, "single", num_samples=SR, mode="subclips")
    write_ramp(clips[1][0], SR // 2)
    with pytest.raises(AudioDecodeError, match="1.wav.*truncated"):
        dataset[3]


@pytest.fixture
def with_nan_file(clips, tmp_path):
    """The three clips and a float wav whose header reads but whose samples are NaN (index 3)."""
    nan = tmp_path / "nan.wav"
    soundfile.write(str(nan), np.full(SR, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    return [*clips, (nan, ("a",))]


def test_a_nan_file_raises_naming_it(with_nan_file):
    dataset = ManifestAudioDataset(with_nan_file, CLASSES, "single", num_samples=SR)
    with pytest.raises(AudioDecodeError, match="nan.wav holds non-finite samples"):
        dataset[3]


def test_skip_serves_the_next_clip_for_a_nan_training_clip_and_warns_once(with_nan_file):
    dataset = ManifestAudioDataset(with_nan_file, CLASSES, "single", num_samples=SR, on_error="skip")
    assert len(dataset) == 4 and dataset.skipped == []  # its header reads: found when read
    with pytest.warns(UserWarning, match=r"nan.wav holds non-finite samples.*left out: on_error='skip'"):
        item = dataset[3]
    assert int(item["clip_id"]) == 0 and torch.isfinite(item["audio"]).all()  # the next clip, wrapping
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: later reads neither warn nor try the file again
        assert [int(dataset[i]["clip_id"]) for i in range(4)] == [0, 1, 2, 0]
    assert [path.name for path in dataset.skipped] == ["nan.wav"]


def test_skip_leaves_a_nan_file_out_of_the_subclips(with_nan_file):
    with pytest.warns(UserWarning, match=r"skipped 1 of 4 .*nan.wav"):
        dataset = ManifestAudioDataset(
            with_nan_file, CLASSES, "single", num_samples=SR, mode="subclips", on_error="skip"
        )
    assert [path.name for path in dataset.skipped] == ["nan.wav"]
    assert [int(dataset[i]["clip_id"]) for i in range(len(dataset))] == [0, 1, 1, 1, 2]
