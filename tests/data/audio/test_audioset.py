"""Tests for AudioSetDataModule on a tiny AudioSet download (tests/layouts/AudioSetDataModule.py) and a tiny
Hugging Face copy (tests/layouts/hub.py)."""

import runpy
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.audio import AudioDecodeError
from ssl_lightning.data import AudioSetDataModule, WeightedDistributedSampler
from ssl_lightning.data.audio.audioset import FILE_STEM
from ssl_lightning.data.audio.hub import HubSource
from ssl_lightning.eval import LinearProbe, ProbeConfig
from ssl_lightning.eval.features import extract_features

LAYOUTS = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "AudioSetDataModule.py")))
"""The layout writer: `make(root)` and its helpers."""
hub = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "hub.py")))


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 6 balanced, 6 unbalanced, 4 eval segments, 527 classes."""
    return Path(layout.make(tmp_path_factory.mktemp("audioset"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_audioset(tmp_path / "audioset")


def ready(root: Path, **kwargs) -> AudioSetDataModule:
    datamodule = AudioSetDataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def _ytids(datamodule: AudioSetDataModule, split: str) -> list[str]:
    """The YouTube IDs of a split's clips, read back from their file names."""
    paths = datamodule.dataset(split, "random_crop").paths
    return [FILE_STEM.fullmatch(paths[i].stem)["ytid"] for i in range(len(paths))]


@pytest.mark.parametrize(
    ("stem", "ytid"),
    [
        ("--PJHxphWEs", "--PJHxphWEs"),
        ("Y--PJHxphWEs", "--PJHxphWEs"),
        ("YaBcDeFgHiJ", "YaBcDeFgHiJ"),  # 11 characters: the Y belongs to the ID
        ("YYaBcDeFgHiJ", "YaBcDeFgHiJ"),
        ("--PJHxphWEs_30.000_40.000", "--PJHxphWEs"),
        ("Y--PJHxphWEs_30_40", "--PJHxphWEs"),
        ("a_b_c_d_e_f_1_2", "a_b_c_d_e_f"),
    ],
)
def test_file_names_resolve_to_youtube_ids(stem, ytid):
    assert FILE_STEM.fullmatch(stem)["ytid"] == ytid


@pytest.mark.parametrize("stem", ["short", "--PJHxphWEs_30", "--PJHxphWEs.wav", "--PJHxph!Es"])
def test_other_names_do_not_match(stem):
    assert FILE_STEM.fullmatch(stem) is None


def test_classes_and_mids_come_from_the_class_index(root):
    datamodule = AudioSetDataModule(str(root))
    assert datamodule.num_classes == 527 and datamodule.label_type == "multi"
    assert datamodule.classes[1] == "Male speech, man speaking" and datamodule.mids[3] == "/m/0t003"


@pytest.mark.parametrize(
    ("train_split", "parts"),
    [("balanced", ["balanced"]), ("unbalanced", ["unbalanced"]), ("full", ["balanced", "unbalanced"])],
)
def test_train_split_and_eval(root, train_split, parts):
    datamodule = ready(root, train_split=train_split)
    expected = [layout.ytid(part, i) for part in parts for i in range(6)]
    assert _ytids(datamodule, "train") == expected  # every naming convention found
    assert (
        _ytids(datamodule, "test")
        == _ytids(datamodule, "valid")
        == [layout.ytid("eval", i) for i in range(4)]
    )


def test_valid_fraction_holds_out_seeded_training_clips(root):
    datamodule = ready(root, train_split="full", valid_fraction=0.25, seed=3)
    train, valid = _ytids(datamodule, "train"), _ytids(datamodule, "valid")
    assert (len(train), len(valid)) == (9, 3) and not set(train) & set(valid)
    assert valid == _ytids(ready(root, train_split="full", valid_fraction=0.25, seed=3), "valid")
    assert valid != _ytids(ready(root, train_split="full", valid_fraction=0.25, seed=4), "valid")
    assert len(_ytids(datamodule, "test")) == 4


def test_labels_are_multi_hot_over_the_mids(root):
    datamodule = ready(root, batch_size=6)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (6, 160000) and batch["label"].shape == (6, 527)
    assert batch["label"].dtype == torch.float32
    expected = torch.zeros(6, 527)
    for row, clip in enumerate(batch["clip_id"].tolist()):
        expected[row, list(layout.LABELS[clip])] = 1.0  # the layout's class indices of segment `clip`
    assert torch.equal(batch["label"], expected)
    assert batch["padding_mask"].sum(1).tolist() == [152000] * 6  # 0.5 s clips at 16 kHz in 10 s


def test_weighted_sampling_uses_inverse_label_frequencies(root):
    datamodule = ready(root, train_split="full", weighted_sampling=True)
    sampler = datamodule.train_dataloader().sampler.inner  # under the resumable sampler
    assert isinstance(sampler, WeightedDistributedSampler) and len(sampler) == 12
    # label counts over the 12 clips (LABELS twice): class 0: 8, 1: 4, 2: 4, 3: 2, 4: 2, 5: 2
    per_segment = [1 / 8, 1 / 8 + 1 / 4, 1 / 4, 1 / 8 + 1 / 2, 1 / 2 + 1 / 2, 1 / 8 + 1 / 4 + 1 / 4]
    torch.testing.assert_close(sampler.weights, torch.tensor(per_segment * 2, dtype=torch.float64))


def test_probe_runs_on_the_datamodule(root):
    """The multi-label path of the probe API: subclip loaders, [N, 527] labels, mAP."""
    datamodule = ready(root, batch_size=8, clip_seconds=0.5)
    features = [
        extract_features(lambda b: b["audio"][:, :64], datamodule.subclip_dataloader(split), "cpu")
        for split in ("train", "valid", "test")
    ]
    assert features[0].labels.shape == (6, 527)
    probe = LinearProbe(ProbeConfig(max_steps=20, eval_every=10, warmup_steps=0)).fit(
        *features[:2], datamodule.label_type, datamodule.num_classes, "mAP"
    )
    assert 0.0 < probe.evaluate(features[2], "mAP") <= 1.0


def test_missing_audio_is_counted_then_raised_or_skipped(fresh_root):
    for i in (1, 3):
        next((fresh_root / "audio" / "bal_train").glob(f"Y{layout.ytid('balanced', i)}.*")).unlink()
    with pytest.raises(FileNotFoundError, match="2 of 6 clips of .*balanced_train_segments.csv") as error:
        ready(fresh_root)
    assert layout.ytid("balanced", 1) in str(error.value) and "README.txt" in str(error.value)
    with pytest.warns(UserWarning, match="2 of 6 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert _ytids(datamodule, "train") == [layout.ytid("balanced", i) for i in (0, 2, 4, 5)]


def test_nan_audio_raises_or_is_skipped_with_a_warning_naming_it(fresh_root):
    """byol_a_audioset.yaml's `on_error: skip` with one training and one eval file of NaN samples."""
    bad = [
        next((fresh_root / "audio" / part).glob(f"*{layout.ytid(name, 1)}*"))
        for part, name in (("bal_train", "balanced"), ("eval", "eval"))
    ]
    for path in bad:
        soundfile.write(str(path), np.full(8000, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioDecodeError, match=f"{bad[0].name} holds non-finite samples"):
        list(ready(fresh_root).train_dataloader())
    with pytest.warns(UserWarning, match=f"skipped 1 of 4 .*{bad[1].name}"):
        test_batches = list(ready(fresh_root, on_error="skip").subclip_dataloader("test"))
    datamodule = ready(fresh_root, on_error="skip")
    with pytest.warns(UserWarning, match=f"{bad[0].name} holds non-finite samples.*left out"):
        train_batches = list(datamodule.train_dataloader())
    assert sum(len(batch["audio"]) for batch in train_batches) == 6
    assert all(torch.isfinite(batch["audio"]).all() for batch in train_batches + test_batches)
    assert sum(len(batch["audio"]) for batch in test_batches) == 3


def test_missing_files_say_what_to_download(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="AudioSet root not found"):
        ready(tmp_path / "nowhere")
    (fresh_root / "unbalanced_train_segments.csv").unlink()
    assert len(ready(fresh_root).dataset("train", "random_crop")) == 6  # balanced needs no unbalanced CSV
    with pytest.raises(FileNotFoundError, match="unbalanced_train_segments.csv; download it from http"):
        ready(fresh_root, train_split="full")
    with pytest.raises(FileNotFoundError, match="audio folder not found.*elsewhere"):
        ready(fresh_root, audio_dir="elsewhere")
    (fresh_root / "class_labels_indices.csv").unlink()
    with pytest.raises(FileNotFoundError, match="class_labels_indices.csv; download"):
        ready(fresh_root)


def test_bad_rows_and_duplicate_files_are_named(fresh_root):
    eval_csv = fresh_root / "eval_segments.csv"
    original = eval_csv.read_text()
    eval_csv.write_text(original + 'abcdefghijk, 0.000, 10.000, "/m/0t000,/m/nope"\n')
    with pytest.raises(ValueError, match="line 8 \\(abcdefghijk\\).*unknown: \\['/m/nope'\\]"):
        ready(fresh_root)
    eval_csv.write_text(eval_csv.read_text().replace(', "/m/0t000,/m/nope"', ""))
    with pytest.raises(ValueError, match="line 8: expected 4 fields"):
        ready(fresh_root)
    eval_csv.write_text(original)
    ytid = layout.ytid("eval", 0)
    shutil.copy(fresh_root / "audio" / "eval" / f"{ytid}.wav", fresh_root / "audio" / f"Y{ytid}.wav")
    with pytest.raises(ValueError, match=f"two audio files for YouTube ID {ytid}"):
        ready(fresh_root)


@pytest.mark.parametrize(("part", "split"), [("eval", "test"), ("balanced", "train")])
def test_a_segment_csv_without_rows_names_the_split_and_the_csv(fresh_root, part, split):
    csv_path = (
        fresh_root / f"{part}_segments.csv" if part == "eval" else fresh_root / f"{part}_train_segments.csv"
    )
    csv_path.write_text("".join(csv_path.read_text().splitlines(keepends=True)[:3]))  # the comment lines
    with pytest.raises(ValueError, match=rf"split\(s\) \['{split}'\] have no clip \({split}: {csv_path}\)"):
        ready(fresh_root)


def test_bad_arguments_raise_early(root):
    with pytest.raises(ValueError, match="train_split must be one of"):
        AudioSetDataModule(str(root), train_split="all")
    with pytest.raises(ValueError, match="valid_fraction"):
        AudioSetDataModule(str(root), valid_fraction=1.0)


def test_train_seconds_and_subclip_counts(root):
    datamodule = ready(root, batch_size=6, train_seconds=0.25, clip_seconds=0.2)
    assert next(iter(datamodule.train_dataloader()))["audio"].shape == (6, 4000)  # 0.25 s crops at 16 kHz
    clip_id = torch.cat([batch["clip_id"] for batch in datamodule.subclip_dataloader("test")])
    assert clip_id.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]  # ceil(0.5 s / 0.2 s) = 3 per clip


def test_canonical_is_the_full_lists_and_the_note_counts_the_audio(root, fresh_root):
    full = ready(root, train_split="full")
    assert full.canonical and "balanced 6/6, unbalanced 6/6, eval 4/4; valid = test" in full.split_note
    next((fresh_root / "audio" / "bal_train").glob(f"Y{layout.ytid('balanced', 2)}.*")).unlink()
    with pytest.warns(UserWarning, match="1 of 6 clips"):
        balanced = ready(fresh_root, on_error="skip", valid_fraction=0.25, seed=3)
    assert not balanced.canonical
    assert "balanced 5/6, eval 4/4; valid = 0.25 of train held out (seed 3)" in balanced.split_note
    assert "not HARES's" in balanced.split_note


def _hub_tables() -> dict:
    """agkphysics/AudioSet as `datasets` gives it: train (3 rows) and test (2 rows), MID-list labels,
    FLAC-like audio at 32 kHz (0.5 s)."""
    labels = {"train": [(0,), (0, 1), (4, 5)], "test": [(2,), (0, 3)]}
    tables = {}
    for split, classes in labels.items():
        columns = {
            "video_id": [layout.ytid(split, i) for i in range(len(classes))],
            "labels": [[layout.MIDS[c] for c in row] for row in classes],
            "human_labels": [[f"Sound {c}" for c in row] for row in classes],
        }
        waveforms = [hub.tone(300 + 70 * i, 0.5, 32000) for i in range(len(classes))]
        tables[split] = hub.audio_table(columns, waveforms, 32000)
    return tables


def test_hub_rows_are_labelled_by_the_class_index(root):
    tables = _hub_tables()
    datamodule = AudioSetDataModule(
        hub=tables, class_index=str(root / "class_labels_indices.csv"), batch_size=3
    )
    datamodule.setup()
    batch = next(iter(datamodule.train_dataloader()))
    expected = torch.zeros(3, 527)
    for row, clip in enumerate(batch["clip_id"].tolist()):
        expected[row, [(0,), (0, 1), (4, 5)][clip]] = 1.0
    assert torch.equal(batch["label"], expected) and batch["audio"].shape == (3, 160000)  # 10 s crops
    test = torch.cat([b["label"] for b in datamodule.val_dataloader()])  # valid = test
    assert test.nonzero().tolist() == [[0, 2], [1, 0], [1, 3]]
    assert not datamodule.canonical and "train 3, test 2 rows" in datamodule.split_note


def _hub_rows(**kwargs) -> dict[str, list[int]]:
    """The table rows of every split of a hub datamodule on `_hub_tables()`."""
    datamodule = AudioSetDataModule(hub=_hub_tables(), **kwargs)
    datamodule.setup()
    return {
        split: list(datamodule.dataset(split, "random_crop").split.rows)
        for split in ("train", "valid", "test")
    }


def test_hub_valid_fraction_holds_out_train_rows(root):
    class_index = str(root / "class_labels_indices.csv")
    rows = _hub_rows(class_index=class_index, valid_fraction=0.34, seed=5)  # round(0.34 * 3) = 1 row
    assert len(rows["valid"]) == 1 and sorted(rows["train"] + rows["valid"]) == [0, 1, 2]
    assert rows["test"] == [0, 1] and rows == _hub_rows(class_index=class_index, valid_fraction=0.34, seed=5)
    assert _hub_rows(class_index=class_index)["valid"] == [0, 1]  # valid_fraction 0: valid is test


def test_hub_arguments_and_labels_are_checked(root):
    class_index = str(root / "class_labels_indices.csv")
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        AudioSetDataModule()
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        AudioSetDataModule(str(root), hub=_hub_tables())
    with pytest.raises(ValueError, match="hub= needs class_index= the path of class_labels_indices.csv"):
        AudioSetDataModule(hub=_hub_tables())
    with pytest.raises(ValueError, match="train_split='balanced' or 'unbalanced' with hub="):
        AudioSetDataModule(hub=_hub_tables(), class_index=class_index, train_split="full")
    unbalanced = AudioSetDataModule(
        hub="agkphysics/AudioSet", class_index=class_index, train_split="unbalanced"
    )
    assert unbalanced.hub == HubSource("agkphysics/AudioSet", name="unbalanced")  # the config of train_split
    tables = _hub_tables()
    tables["test"] = tables["test"].map(lambda row: {"labels": row["labels"] + ["/m/nope"]})
    with pytest.raises(ValueError, match="\\[test\\] row 0: labels .*unknown: \\['/m/nope'\\]"):
        AudioSetDataModule(hub=tables, class_index=class_index).setup()
    with pytest.raises(ValueError, match="lack split\\(s\\) \\['test'\\]"):
        AudioSetDataModule(hub={"train": tables["train"]}, class_index=class_index).setup()
