"""Tiny copy of the PAMAP2 layout as `PAMAP2_Dataset.zip` unpacks it: `PAMAP2_Dataset/Protocol/subject101.dat`
... `subject109.dat`, 100 Hz rows of 54 space-separated numbers (timestamp with 2 decimals, activityID,
heart rate, then 17 columns per IMU: hand, chest, ankle), `NaN` where a value is missing: heart rate on all
but every 11th row (it comes at ~9 Hz), and the hand IMU for a few rows (a dropout).

Each subject records a few activities (`SUBJECT_ACTIVITIES`: (activity id, rows) stretches) separated by
transient rows (activity 0), as the real protocol. Marker columns make windows checkable: hand temperature
= subject number, chest temperature = activity id, ankle temperature = row index within the stretch.
Some stretches must be dropped (activities 9 and 17 are optional ones; subject 107's sitting is too short
for a 320-row window) and subject 109's rope jumping comes in two stretches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRANSIENT_ROWS = 15
HEART_RATE_EVERY = 11
SUBJECT_ACTIVITIES = {
    101: [(1, 330), (4, 330)],
    102: [(2, 330), (5, 330)],
    103: [(3, 330), (6, 330)],
    104: [(7, 330), (12, 330)],
    105: [(13, 330), (16, 330), (17, 330)],
    106: [(1, 330), (24, 330)],
    107: [(4, 330), (2, 300)],
    108: [(9, 330), (16, 330)],
    109: [(24, 200), (5, 330), (24, 200)],
}


def _imu(rng: np.random.Generator, rows: int, temperature: np.ndarray) -> np.ndarray:
    """[rows, 17]: temperature, acc 16 g, acc 6 g, gyro, magnetometer, orientation (4)."""
    motion = rng.normal(0, 1, (rows, 12)) + np.array([9.8, 0, 0, 9.8, 0, 0, 0, 0, 0, 20, -30, 10])
    orientation = np.tile([1.0, 0.0, 0.0, 0.0], (rows, 1))
    return np.concatenate([temperature[:, None], motion, orientation], axis=1)


def subject_rows(subject: int, seed: int = 0) -> np.ndarray:
    """The rows of one subject file, float64 [rows, 54] with NaNs."""
    rng = np.random.default_rng([seed, subject])
    stretches = [(0, TRANSIENT_ROWS)]
    for stretch in SUBJECT_ACTIVITIES[subject]:
        stretches += [stretch, (0, TRANSIENT_ROWS)]
    parts = []
    for activity, rows in stretches:
        hand = _imu(rng, rows, np.full(rows, float(subject)))
        chest = _imu(rng, rows, np.full(rows, float(activity)))
        ankle = _imu(rng, rows, np.arange(rows, dtype=np.float64))
        heart = np.full((rows, 1), 80.0 + activity)
        parts.append(np.concatenate([np.full((rows, 1), float(activity)), heart, hand, chest, ankle], axis=1))
    values = np.concatenate(parts)
    timestamps = 5.0 + np.arange(len(values)) / 100
    values = np.concatenate([timestamps[:, None], values], axis=1)
    heart_missing = np.arange(len(values)) % HEART_RATE_EVERY != 3
    values[heart_missing, 2] = np.nan
    values[TRANSIENT_ROWS + 100 : TRANSIENT_ROWS + 103, 3:20] = np.nan
    return values


def write_subject(path: Path, values: np.ndarray) -> None:
    """One .dat file: 2-decimal timestamp, integer activity, `%g` numbers, `NaN` tokens, `\\n` line ends."""
    lines = []
    for row in values:
        numbers = ["NaN" if np.isnan(value) else f"{value:g}" for value in row[2:]]
        lines.append(" ".join([f"{row[0]:.2f}", f"{int(row[1])}", *numbers]))
    path.write_text("\n".join(lines) + "\n")


def make(root: Path) -> dict:
    """Write the tiny layout under `root`; the `data.init_args` overrides."""
    protocol = Path(root) / "PAMAP2_Dataset" / "Protocol"
    protocol.mkdir(parents=True, exist_ok=True)
    for subject in SUBJECT_ACTIVITIES:
        write_subject(protocol / f"subject{subject}.dat", subject_rows(subject))
    return {"root": str(root), "train_windows": 16, "eval_windows": 8, "batch_size": 4, "num_workers": 0}
