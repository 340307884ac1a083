"""DABS wearable sensors (Tamkin et al. 2021, `src/datasets/sensor/pamap2.py`): batches
`{"sensor": float32 [B, 320, 52], "label": int64 [B], "clip_id": int64 [B]}`, one 1d input of 320 time
steps x 52 channels in segments of 5 (64 tokens).

- `PAMAP2DataModule`: PAMAP2 (Reiss & Stricker 2012) as DABS reads it.
- `SyntheticSensorsDataModule`: the embedded default, generated activity recordings in the same format.

PAMAP2 layout (https://archive.ics.uci.edu/ml/machine-learning-databases/00231/PAMAP2_Dataset.zip):
`PAMAP2_Dataset/Protocol/subject101.dat` ... `subject109.dat`, one 100 Hz row per line of 54
space-separated numbers (`NaN` where missing): timestamp (s), activityID, heart rate (bpm), then 17
columns for each IMU (hand, chest, ankle): temperature, 3D acceleration (+-16 g), 3D acceleration
(+-6 g), 3D gyroscope, 3D magnetometer, 4D orientation.

What DABS does, and this module with it:
- Each subject file is linearly interpolated over its rows, column by column (pandas
  `DataFrame.interpolate()`: heart rate comes at ~9 Hz, so most rows lack it). pandas leaves NaNs before a
  column's first value; here they take that first value (such rows are the transient activity 0 at a
  recording's start, which is dropped, so windows are the same).
- The 52 channels are all columns after activityID (heart rate + 3 x 17, orientation included); no
  normalisation.
- Classes: the 11 activity ids DABS keeps, labelled by their position in `ACTIVITIES` (DABS declares
  `NUM_CLASSES = 12` but its list holds 11 ids; label 11 never occurs). Other rows are dropped.
- A window: a (subject, activity) pair drawn uniformly among those of the split with more than 320 rows
  (DABS draws both uniformly and redraws otherwise: the same distribution), then 320 consecutive rows of
  that activity (its rows in file order, recordings of it joined) from a start uniform in [0, rows - 320).
  DABS draws 50,000 such windows per training epoch and 10,000 per evaluation, fresh each time; here the
  training windows are drawn per item (seeded from `(seed, epoch, position)` by the train loader), and the
  evaluation windows ("subclips") once per split from `seed`, so every evaluation sees the same ones.
- Subjects: train 101-104, 107-109; valid 105; test `test_subject`. DABS's transfer runs score on its
  `train=False` set, subject 105, so the default `test_subject=105` makes "test" that subject (valid = test,
  as in every DABS datamodule: DABS selects nothing on a valid split); `test_subject=106` (DABS's `test`
  mode, which its default runs do not use) gives a held-out test subject beside valid 105.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssl_lightning.data.dabs.base import SPLITS, DabsDataModule, Mode
from ssl_lightning.nn.input_specs import InputSpec

WINDOW = 320
"""Time steps per window (DABS `MEASUREMENTS_PER_EXAMPLE`)."""
SEGMENT = 5
"""Time steps per token (DABS `SEGMENT_SIZE`)."""
CHANNELS = 52
"""Heart rate + 3 IMUs x 17 columns."""
SENSOR_SPEC = InputSpec("sensor", "1d", WINDOW, SEGMENT, CHANNELS)

COLUMNS = 54
"""Columns of a PAMAP2 row: timestamp, activityID, heart rate, 3 x 17 IMU columns."""
ACTIVITIES = {
    1: "lying",
    2: "sitting",
    3: "standing",
    4: "walking",
    5: "running",
    6: "cycling",
    7: "Nordic walking",
    12: "ascending stairs",
    13: "descending stairs",
    16: "vacuum cleaning",
    24: "rope jumping",
}
"""The activity ids DABS keeps (the protocol's optional activities 9-11, 17-20 and the transient 0 are
dropped) with their PAMAP2 names, in label order."""
TRAIN_SUBJECTS, VALID_SUBJECT = (101, 102, 103, 104, 107, 108, 109), 105
TEST_SUBJECTS = (105, 106)
"""Subjects that may serve as test: DABS scores 105 (its `train=False` set); 106 is its unused `test` mode."""
TRAIN_WINDOWS, EVAL_WINDOWS = 50_000, 10_000
"""Windows per training epoch and per evaluation split (DABS)."""
PAMAP2_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00231/PAMAP2_Dataset.zip"


def interpolate_nans(values: np.ndarray, where: str) -> np.ndarray:
    """`values` [rows, columns] with each column's NaNs linearly interpolated over the row positions (ends:
    the nearest value), in place.

    Raises:
        ValueError: a column has no value at all (named with `where`).
    """
    rows = np.arange(values.shape[0])
    for column in np.flatnonzero(np.isnan(values).any(axis=0)):
        missing = np.isnan(values[:, column])
        if missing.all():
            raise ValueError(f"{where}: column {column} is NaN in every row; re-extract the official archive")
        values[missing, column] = np.interp(rows[missing], rows[~missing], values[~missing, column])
    return values


def read_subject(path: Path) -> dict[int, Tensor]:
    """One subject's `.dat` file as DABS reads it: label -> float32 `[rows, 52]`, the interpolated rows of
    that activity in file order (labels of `ACTIVITIES` present in the file only).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: it is not rows of 54 numbers.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"PAMAP2 subject file {path} does not exist; download {PAMAP2_URL} and unzip it so that root "
            "holds PAMAP2_Dataset/Protocol/subject101.dat ... subject109.dat"
        )
    try:
        values = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"{path} is not rows of {COLUMNS} space-separated numbers: {err}") from err
    if values.shape[1] != COLUMNS:
        raise ValueError(f"{path} has rows of {values.shape[1]} numbers; PAMAP2 rows have {COLUMNS}")
    interpolate_nans(values, str(path))
    activity = values[:, 1]
    return {
        label: torch.from_numpy(values[activity == activity_id, 2:].astype(np.float32))
        for label, activity_id in enumerate(ACTIVITIES)
        if (activity == activity_id).any()
    }


class ActivityWindows(Dataset):
    """Windows of `WINDOW` rows of recordings, each a float32 `[rows, C]` block with its label:
    `{"sensor": [WINDOW, C], "label": int64}`.

    With `seed` None, item i draws its window with torch's global CPU generator (the train loader seeds it
    per item): a block uniformly among those with more than `WINDOW` rows, then a start uniform in
    [0, rows - WINDOW). With a `seed`, all `count` windows are drawn once from it, and item i is always the
    same window.
    """

    def __init__(
        self, blocks: list[tuple[Tensor, int]], count: int, where: str, seed: int | None = None
    ) -> None:
        self.blocks = [(block, label) for block, label in blocks if block.shape[0] > WINDOW]
        if not self.blocks:
            raise ValueError(
                f"{where} has no activity recording longer than {WINDOW} rows to draw windows from"
            )
        self.rows = torch.tensor([block.shape[0] for block, _ in self.blocks])
        self.count = count
        self.fixed = None if seed is None else self.draw(count, torch.Generator().manual_seed(seed))

    def draw(self, count: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """`count` windows: (block indices, start rows)."""
        picks = torch.randint(len(self.blocks), (count,), generator=generator)
        starts = (
            torch.rand(count, generator=generator, dtype=torch.float64) * (self.rows[picks] - WINDOW)
        ).long()
        return picks, starts

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        if self.fixed is None:
            picks, starts = self.draw(1)
            pick, start = int(picks[0]), int(starts[0])
        else:
            pick, start = int(self.fixed[0][index]), int(self.fixed[1][index])
        block, label = self.blocks[pick]
        return {"sensor": block[start : start + WINDOW], "label": torch.tensor(label, dtype=torch.long)}


class SensorDataModule(DabsDataModule):
    """Base of the sensor datamodules: the `sensor` spec, single-label windows of recordings per split
    (`self.recordings[split]`: `(block float32 [rows, 52], label)` pairs, set by `load`)."""

    input_specs = [SENSOR_SPEC]
    label_type = "single"

    def __init__(
        self, train_windows: int, eval_windows: int, batch_size: int, num_workers: int, seed: int
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        for name, value in (("train_windows", train_windows), ("eval_windows", eval_windows)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, got {value!r}")
        self.train_windows, self.eval_windows = train_windows, eval_windows
        self.recordings: dict[str, list[tuple[Tensor, int]]] = {}

    def make_dataset(self, split: str, mode: Mode) -> ActivityWindows:
        """`train_windows` random windows ("random_crop") or `eval_windows` fixed ones ("subclips", drawn from
        `seed` and the split: `seed * 3 + split index`)."""
        where = f"{type(self).__name__} split {split!r}"
        if mode == "random_crop":
            return ActivityWindows(self.recordings[split], self.train_windows, where)
        return ActivityWindows(
            self.recordings[split],
            self.eval_windows,
            where,
            seed=self.seed * len(SPLITS) + SPLITS.index(split),
        )


class PAMAP2DataModule(SensorDataModule):
    """PAMAP2 activity windows as DABS serves them (see the module docstring).

    Args:
        root: the folder holding the unzipped `PAMAP2_Dataset` (download it from `PAMAP2_URL`).
        train_windows: random windows per training epoch (DABS: 50,000).
        eval_windows: fixed windows per evaluation split (DABS: 10,000).
        batch_size: windows per batch (DABS: 256).
        num_workers: DataLoader workers.
        seed: seed of the training shuffle and draws and of the evaluation windows.
        test_subject: the subject scored as "test": 105, as DABS (valid = test), or 106 (DABS's unused test
            mode: then valid 105 and test 106 differ).
    """

    classes = tuple(ACTIVITIES.values())

    @property
    def canonical(self) -> bool:
        """True when test is subject 105, the set DABS scores."""
        return self.test_subject == VALID_SUBJECT

    @property
    def split_note(self) -> str:
        """Which subjects serve which split."""
        test = (
            "test 105 = valid (the train=False set DABS scores)" if self.canonical else "valid 105, test 106"
        )
        return (
            f"PAMAP2 Protocol subjects: train 101-104,107-109, {test}; evaluation windows fixed by the seed"
        )

    def __init__(
        self,
        root: str,
        train_windows: int = TRAIN_WINDOWS,
        eval_windows: int = EVAL_WINDOWS,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
        test_subject: int = VALID_SUBJECT,
    ) -> None:
        super().__init__(train_windows, eval_windows, batch_size, num_workers, seed)
        self.save_hyperparameters()
        if test_subject not in TEST_SUBJECTS:
            raise ValueError(
                f"PAMAP2DataModule: test_subject must be 105 (DABS's scored subject) or 106, got "
                f"{test_subject!r}"
            )
        self.root = Path(root).expanduser()
        self.test_subject = test_subject

    @property
    def subjects(self) -> dict[str, tuple[int, ...]]:
        """The subjects of each split."""
        return {"train": TRAIN_SUBJECTS, "valid": (VALID_SUBJECT,), "test": (self.test_subject,)}

    def load(self) -> None:
        """Read the subject files of every split."""
        protocol = self.root / "PAMAP2_Dataset" / "Protocol"
        if not protocol.is_dir():
            raise FileNotFoundError(
                f"no PAMAP2_Dataset/Protocol folder under {self.root}; download {PAMAP2_URL} and unzip it "
                "into root"
            )
        self.recordings = {
            split: [
                (block, label)
                for subject in subjects
                for label, block in read_subject(protocol / f"subject{subject}.dat").items()
            ]
            for split, subjects in self.subjects.items()
        }


SAMPLE_RATE = 100
"""PAMAP2's IMU rate (Hz), used for the generated recordings."""
GRAVITY = 9.81
IMUS = ("hand", "chest", "ankle")
SYNTHETIC_ACTIVITIES = {
    "lying": (60.0, 0.0, (0.05, 0.05, 0.05), (2, 2, 2)),
    "sitting": (70.0, 0.0, (0.1, 0.05, 0.05), (2, 0, 1)),
    "standing": (80.0, 0.0, (0.1, 0.05, 0.05), (0, 0, 0)),
    "walking": (105.0, 1.8, (2.0, 1.0, 4.0), (0, 0, 0)),
    "running": (160.0, 2.8, (6.0, 3.0, 10.0), (0, 0, 0)),
    "cycling": (125.0, 1.2, (0.5, 1.0, 3.0), (0, 0, 1)),
}
"""Generated activities: (heart rate bpm, step frequency Hz, motion amplitude m/s^2 per IMU (hand, chest,
ankle), gravity axis per IMU (posture)), in label order."""


def synthetic_imu(
    rng: np.random.Generator, steps: int, frequency: float, amplitude: float, axis: int, traits: np.ndarray
) -> np.ndarray:
    """One IMU's 17 PAMAP2 columns `[steps, 17]`: temperature, acceleration (+-16 g and +-6 g: the same
    motion, own noise, the latter clipped at 6 g), gyroscope, magnetometer, orientation (1, 0, 0, 0).
    Motion is periodic at `frequency` (a 2nd harmonic on the 2nd axis) of `amplitude`, on gravity along
    `axis`; `traits` (subject, 4 numbers) shift temperature and the magnetic field."""
    t = np.arange(steps)[:, None] / SAMPLE_RATE
    phases = rng.uniform(0, 2 * np.pi, 3)
    harmonics = np.array([1.0, 2.0, 1.0])
    weights = amplitude * np.array([1.0, 0.5, 0.3])
    motion = weights * np.sin(2 * np.pi * frequency * harmonics * t + phases)
    gravity = np.zeros(3)
    gravity[axis] = GRAVITY
    acceleration = gravity + motion
    gyroscope = 0.3 * weights * np.cos(2 * np.pi * frequency * harmonics * t + phases)
    magnetometer = np.roll(np.array([30.0, -20.0, 10.0]), axis) + 5 * traits[1:]
    columns = [
        32 + traits[0] + 0.01 * rng.standard_normal((steps, 1)),
        acceleration + 0.1 * rng.standard_normal((steps, 3)),
        np.clip(acceleration + 0.1 * rng.standard_normal((steps, 3)), -6 * GRAVITY, 6 * GRAVITY),
        gyroscope + 0.02 * rng.standard_normal((steps, 3)),
        magnetometer + 0.5 * rng.standard_normal((steps, 3)),
        np.broadcast_to([1.0, 0.0, 0.0, 0.0], (steps, 4)),
    ]
    return np.concatenate(columns, axis=1)


def synthetic_recording(seed: int, subject: int, label: int, steps: int) -> Tensor:
    """Subject `subject` doing activity `label` for `steps` rows: float32 `[steps, 52]` (heart rate, then
    hand, chest and ankle IMUs as PAMAP2). Subject traits (pace, heart rate, temperature, magnetic field)
    come from `(seed, subject)`, the rest from `(seed, subject, label)`."""
    traits = np.random.default_rng([seed, subject])
    pace, heart_offset = traits.uniform(0.9, 1.1), traits.normal(0, 5)
    imu_traits = traits.standard_normal((len(IMUS), 4))
    rng = np.random.default_rng([seed, subject, label])
    heart_rate, frequency, amplitudes, axes = list(SYNTHETIC_ACTIVITIES.values())[label]
    t = np.arange(steps)[:, None] / SAMPLE_RATE
    heart = heart_rate + heart_offset + 2 * np.sin(2 * np.pi * t / 30) + rng.standard_normal((steps, 1))
    imus = [
        synthetic_imu(rng, steps, frequency * pace, amplitude, axis, imu)
        for amplitude, axis, imu in zip(amplitudes, axes, imu_traits, strict=True)
    ]
    return torch.from_numpy(np.concatenate([heart, *imus], axis=1).astype(np.float32))


class SyntheticSensorsDataModule(SensorDataModule):
    """Embedded default: generated PAMAP2-like recordings (100 Hz, the 52 PAMAP2 channels) of 6 activities
    (`SYNTHETIC_ACTIVITIES`): heart rate at an activity level, posture as the gravity axis of each IMU,
    periodic motion at an activity's step frequency and amplitude (scaled by a subject's pace), sensor
    noise. Every subject records every activity for `windows_per_recording` x 320 rows; subjects 1.. are
    split by number into train / valid / test (`subjects` of each), so no subject is in two splits.
    Windows are drawn as `PAMAP2DataModule` draws them. Deterministic given `seed`.

    Args:
        subjects: (train, valid, test) subject counts.
        windows_per_recording: length of each recording, in windows of 320 rows.
        train_windows: random windows per training epoch.
        eval_windows: fixed windows per evaluation split.
        batch_size: windows per batch (DABS: 256).
        num_workers: DataLoader workers.
        seed: seed of the recordings, the training shuffle and draws and the evaluation windows.
    """

    classes = tuple(SYNTHETIC_ACTIVITIES)
    canonical = False

    def __init__(
        self,
        subjects: tuple[int, int, int] = (6, 2, 2),
        windows_per_recording: int = 8,
        train_windows: int = 2048,
        eval_windows: int = 512,
        batch_size: int = 256,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(train_windows, eval_windows, batch_size, num_workers, seed)
        self.save_hyperparameters()
        if len(subjects) != 3 or any(
            isinstance(n, bool) or not isinstance(n, int) or n <= 0 for n in subjects
        ):
            raise ValueError(
                f"SyntheticSensorsDataModule: subjects must be 3 positive (train, valid, test) counts, got "
                f"{subjects!r}"
            )
        if (
            isinstance(windows_per_recording, bool)
            or not isinstance(windows_per_recording, int)
            or (windows_per_recording <= 0)
        ):
            raise ValueError(
                "SyntheticSensorsDataModule: windows_per_recording must be a positive int, got "
                f"{windows_per_recording!r}"
            )
        ends = np.cumsum(subjects).tolist()
        self.subjects = {
            split: tuple(range(start + 1, end + 1))
            for split, start, end in zip(SPLITS, [0, *ends[:2]], ends, strict=True)
        }
        self.windows_per_recording = windows_per_recording

    @property
    def split_note(self) -> str:
        """Which generated subjects each split holds."""
        ranges = ", ".join(f"{split} {ids[0]}-{ids[-1]}" for split, ids in self.subjects.items())
        return f"generated recordings (not a DABS data set), subjects by number: {ranges}; seed {self.seed}"

    def load(self) -> None:
        """Generate every subject's recordings."""
        steps = self.windows_per_recording * WINDOW + 1
        self.recordings = {
            split: [
                (synthetic_recording(self.seed, subject, label, steps), label)
                for subject in subjects
                for label in range(len(self.classes))
            ]
            for split, subjects in self.subjects.items()
        }
