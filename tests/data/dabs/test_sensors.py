import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lightning.data.dabs.sensors import (
    ACTIVITIES,
    WINDOW,
    ActivityWindows,
    PAMAP2DataModule,
    SyntheticSensorsDataModule,
    read_subject,
)
from ssl_lightning.nn.input_specs import InputSpec

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
HAND_TEMPERATURE, CHEST_TEMPERATURE, ANKLE_TEMPERATURE = 1, 18, 35
"""Channels of the layout's markers: subject, activity id, row within the stretch."""


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict:
    return runpy.run_path(str(LAYOUTS / "PAMAP2DataModule.py"))["make"](tmp_path_factory.mktemp("pamap2"))


@pytest.fixture(scope="module")
def pamap2(layout) -> PAMAP2DataModule:
    datamodule = PAMAP2DataModule(**layout)
    datamodule.setup()
    return datamodule


def _row(time: float, activity: int, heart: str, imu: list[str]) -> str:
    return " ".join([f"{time:.2f}", str(activity), heart, *imu])


def test_read_subject_parses_nan_tokens_keeps_dabs_activities_and_interpolates(tmp_path):
    imu = [f"{column}" for column in range(51)]
    dropout = ["NaN"] * 17 + imu[17:]
    shifted = [f"{column + 2}" for column in range(51)]
    lines = [
        _row(8.38, 0, "NaN", imu),  # transient; its heart rate precedes the first reading
        _row(8.39, 1, "100", imu),
        _row(8.40, 1, "NaN", dropout),  # hand IMU dropout between equal and shifted rows
        _row(8.41, 1, "NaN", shifted),
        _row(8.42, 24, "112", imu),
        _row(8.43, 17, "NaN", imu),  # ironing: optional, not kept by DABS
    ]
    path = tmp_path / "subject101.dat"
    path.write_text("\n".join(lines) + "\n")
    recordings = read_subject(path)
    assert sorted(recordings) == [0, 10]  # lying -> label 0, rope jumping (24) -> label 10
    lying = recordings[0]
    assert lying.shape == (3, 52) and lying.dtype == torch.float32
    assert lying[:, 0].tolist() == pytest.approx([100, 104, 108])  # 100 .. 112 over rows 1..4
    assert lying[1, 1:18].tolist() == pytest.approx([column + 1 for column in range(17)])
    assert lying[1, 18:].tolist() == [float(column) for column in range(17, 51)]
    assert lying[2, 1:].tolist() == [float(column + 2) for column in range(51)]
    assert recordings[10][:, 0].tolist() == [112.0]


def test_read_subject_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="subject105.dat.*PAMAP2_Dataset.zip"):
        read_subject(tmp_path / "subject105.dat")
    short = tmp_path / "subject101.dat"
    short.write_text(_row(1.0, 1, "90", ["0"] * 50) + "\n")
    with pytest.raises(ValueError, match=r"subject101.dat has rows of 53 numbers; PAMAP2 rows have 54"):
        read_subject(short)
    empty_column = tmp_path / "subject102.dat"
    empty_column.write_text("\n".join(_row(1.0, 1, "NaN", ["0"] * 51) for _ in range(2)) + "\n")
    with pytest.raises(ValueError, match="subject102.dat: column 2 is NaN in every row"):
        read_subject(empty_column)
    with pytest.raises(FileNotFoundError, match="no PAMAP2_Dataset/Protocol folder under"):
        PAMAP2DataModule(str(tmp_path)).setup()


def test_pamap2_spec_classes_and_dabs_subject_splits(pamap2):
    assert pamap2.input_specs == [InputSpec("sensor", "1d", 320, 5, 52)]
    assert pamap2.input_specs[0].num_tokens == 64
    assert pamap2.classes == (
        "lying", "sitting", "standing", "walking", "running", "cycling", "Nordic walking",
        "ascending stairs", "descending stairs", "vacuum cleaning", "rope jumping",
    )  # fmt: skip
    assert pamap2.num_classes == 11 and pamap2.label_type == "single" and pamap2.canonical
    subjects = {
        split: {int(block[0, HAND_TEMPERATURE]) for block, _ in recordings}
        for split, recordings in pamap2.recordings.items()
    }
    # DABS scores subject 105 (its train=False set): test is 105 by default, and valid serves it too
    assert subjects == {"train": {101, 102, 103, 104, 107, 108, 109}, "valid": {105}, "test": {105}}
    assert "test 105 = valid" in pamap2.split_note


def test_pamap2_test_subject_106_holds_out_dabs_unused_test_mode(layout):
    pamap2 = PAMAP2DataModule(**{**layout, "test_subject": 106})
    pamap2.setup()
    subjects = {
        split: {int(block[0, HAND_TEMPERATURE]) for block, _ in recordings}
        for split, recordings in pamap2.recordings.items()
    }
    assert subjects["valid"] == {105} and subjects["test"] == {106} and not pamap2.canonical
    assert "valid 105, test 106" in pamap2.split_note
    with pytest.raises(ValueError, match="test_subject must be 105.*got 104"):
        PAMAP2DataModule(**{**layout, "test_subject": 104})


def test_pamap2_windows_are_320_consecutive_rows_of_their_labelled_activity(pamap2):
    ids = list(ACTIVITIES)
    seen = set()
    for split in ("train", "valid", "test"):
        for mode in ("random_crop", "subclips"):
            dataset = pamap2.dataset(split, mode)
            for index in range(len(dataset)):
                item = dataset[index]
                window, label = item["sensor"], int(item["label"])
                assert window.shape == (WINDOW, 52) and int(item["clip_id"]) == index
                assert (window[:, CHEST_TEMPERATURE] == ids[label]).all()
                steps = torch.diff(window[:, ANKLE_TEMPERATURE])
                joins = (steps != 1).sum()  # only subject 109's two rope-jumping stretches are joined
                assert joins == 0 or (label == 10 and joins == 1 and window[0, HAND_TEMPERATURE] == 109)
                seen.add((int(window[0, HAND_TEMPERATURE]), ids[label]))
    assert (105, 17) not in seen and (108, 9) not in seen  # optional activities are dropped


def test_pamap2_never_draws_a_recording_of_320_rows_or_fewer(pamap2):
    windows = pamap2.dataset("train", "random_crop")
    torch.manual_seed(0)
    items = [windows[0] for _ in range(400)]
    draws = {(int(item["sensor"][0, HAND_TEMPERATURE]), int(item["label"])) for item in items}
    assert (107, 1) not in draws  # subject 107 sits for 300 rows only
    assert (107, 3) in draws and (109, 10) in draws


def test_window_starts_are_uniform_below_rows_minus_320():
    block = torch.arange(WINDOW + 2, dtype=torch.float32)[:, None]
    windows = ActivityWindows([(block, 0)], count=200, where="test", seed=0)
    starts = {int(windows[i]["sensor"][0, 0]) for i in range(200)}
    assert starts == {0, 1}  # DABS: randint(rows - 320), the last start excluded


def test_pamap2_evaluation_windows_are_fixed_by_seed_and_loaders_keep_order(layout, pamap2):
    again = PAMAP2DataModule(**layout)
    again.setup()
    other = PAMAP2DataModule(**{**layout, "seed": 1})
    other.setup()
    batches = [list(module.subclip_dataloader("test")) for module in (pamap2, again, other)]
    windows = [torch.cat([batch["sensor"] for batch in run]) for run in batches]
    assert windows[0].shape == (8, WINDOW, 52)
    assert torch.equal(windows[0], windows[1]) and not torch.equal(windows[0], windows[2])
    assert torch.cat([batch["clip_id"] for batch in batches[0]]).tolist() == list(range(8))
    valid = pamap2.dataset("valid", "subclips")
    expected = torch.stack([valid[index]["sensor"] for index in range(4)])
    assert torch.equal(next(iter(pamap2.val_dataloader()))["sensor"], expected)
    with pytest.raises(ValueError, match="crops must be None"):
        pamap2.subclip_dataloader("valid", crops=3)


def test_pamap2_train_loader_batches_are_seeded(layout, pamap2):
    again = PAMAP2DataModule(**layout)
    again.setup()
    first, second = (list(module.train_dataloader()) for module in (pamap2, again))
    assert len(first) == 4  # 16 windows per epoch, 4 per batch
    batch = first[0]
    assert set(batch) == {"sensor", "label", "clip_id"}
    assert batch["sensor"].shape == (4, WINDOW, 52) and batch["sensor"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["clip_id"].dtype == torch.int64
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["sensor"], b["sensor"]) and torch.equal(a["clip_id"], b["clip_id"])
    assert sorted(torch.cat([b["clip_id"] for b in first]).tolist()) == list(range(16))


def _synthetic(**kwargs) -> SyntheticSensorsDataModule:
    datamodule = SyntheticSensorsDataModule(**{"windows_per_recording": 2, "batch_size": 16, **kwargs})
    datamodule.setup()
    return datamodule


def test_synthetic_sensors_are_deterministic_and_split_by_subject():
    first, again, other = _synthetic(), _synthetic(), _synthetic(seed=1)
    for split in ("train", "valid", "test"):
        runs = (module.recordings[split] for module in (first, again, other))
        for (a, label_a), (b, label_b), (c, _) in zip(*runs, strict=True):
            assert torch.equal(a, b) and label_a == label_b and not torch.equal(a, c)
    assert first.input_specs == [InputSpec("sensor", "1d", 320, 5, 52)] and not first.canonical
    assert first.subjects == {"train": (1, 2, 3, 4, 5, 6), "valid": (7, 8), "test": (9, 10)}
    assert "train 1-6, valid 7-8, test 9-10" in first.split_note
    # every subject records every activity once: the classes are balanced in each split
    for split, subjects in first.subjects.items():
        labels = [label for _, label in first.recordings[split]]
        assert np.bincount(labels).tolist() == [len(subjects)] * 6
    counts = np.bincount(
        [int(first.dataset("valid", "subclips")[i]["label"]) for i in range(512)], minlength=6
    )
    assert counts.min() > 512 / 6 * 0.6 and counts.max() < 512 / 6 * 1.4


def test_synthetic_activities_have_their_heart_rate_posture_and_step_frequency():
    datamodule = _synthetic(windows_per_recording=4)
    recordings = datamodule.recordings["train"]
    heart = {label: [] for label in range(6)}
    for block, label in recordings:
        heart[label].append(float(block[:, 0].mean()))
    means = [np.mean(heart[label]) for label in range(6)]
    # lying < sitting < standing < walking < cycling < running
    assert np.argsort(means).tolist() == [0, 1, 2, 3, 5, 4]
    ankle_acceleration = 35 + 1  # ankle IMU: temperature, then 3D acceleration (+-16 g)
    for block, label in recordings:
        gravity = block[:, ankle_acceleration : ankle_acceleration + 3].mean(dim=0)
        chest_gravity = block[:, 19:22].mean(dim=0)
        assert int(chest_gravity.abs().argmax()) == (2 if label == 0 else 0)  # lying: chest along z
        motion = block[:, ankle_acceleration] - gravity[0]
        spectrum = torch.fft.rfft(motion).abs()
        peak_hz = float(spectrum[1:].argmax() + 1) * 100 / block.shape[0]
        step_hz = {3: 1.8, 4: 2.8, 5: 1.2}.get(label)
        if step_hz is None:
            assert motion.std() < 0.5  # still activities: sensor noise only
        else:
            assert step_hz * 0.85 < peak_hz < step_hz * 1.15 and motion.std() > 1


def test_synthetic_loader_batch_format_and_errors():
    datamodule = _synthetic(train_windows=32)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["sensor"].shape == (16, WINDOW, 52) and batch["label"].shape == (16,)
    assert batch["clip_id"].shape == (16,) and not torch.isnan(batch["sensor"]).any()
    assert datamodule.num_classes == 6 and datamodule.classes[4] == "running"
    evaluation = next(iter(datamodule.subclip_dataloader("test", batch_size=5)))
    assert evaluation["clip_id"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="subjects must be 3 positive"):
        SyntheticSensorsDataModule(subjects=(4, 0, 1))
    with pytest.raises(ValueError, match="train_windows must be a positive int"):
        SyntheticSensorsDataModule(train_windows=0)
    with pytest.raises(RuntimeError, match=r"setup\(\) must run"):
        SyntheticSensorsDataModule().dataset("train", "random_crop")
    with pytest.raises(ValueError, match="has no split 'validation'"):
        datamodule.dataset("validation", "subclips")
