"""Tiny copies of the CIFAR python-pickle layouts, written as the official archives lay them out.

`make(root)` writes `root/cifar-100-python/{train, test, meta}` with 3 train and 2 test images per
class; `write_cifar(root, "cifar10")` writes `root/cifar-10-batches-py/{data_batch_1..5, test_batch,
batches.meta}`. The files follow the real ones (as torchvision's CIFAR datasets read them), spelled
out here rather than taken from the library: pickled dicts with bytes keys, `data` uint8 [N, 3072]
(R, G, B planes of 32x32 rows), label lists, `filenames`, `batch_label`, and the meta dicts of class
names. Class c's images are noise around a class colour, so a probe can tell classes apart.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

PIXELS = 3 * 32 * 32


def _images(labels: np.ndarray, rng: np.random.Generator, num_classes: int) -> np.ndarray:
    """uint8 [N, 3072]: per image, the class colour (one value per RGB plane) plus noise."""
    colours = np.random.default_rng(1234).integers(40, 216, size=(num_classes, 3))
    planes = np.repeat(colours[labels], 1024, axis=1)
    return np.clip(planes + rng.integers(-30, 31, size=(len(labels), PIXELS)), 0, 255).astype(np.uint8)


def _dump(path: Path, content: dict) -> None:
    with path.open("wb") as f:
        pickle.dump(content, f, protocol=2)


def write_cifar(
    root: Path, variant: str = "cifar100", train_per_class: int = 3, test_per_class: int = 2, seed: int = 0
) -> Path:
    """Write the tiny layout of `variant` ("cifar100" or "cifar10") under `root`; returns its folder."""
    rng = np.random.default_rng(seed)
    num_classes = 100 if variant == "cifar100" else 10
    folder = Path(root) / ("cifar-100-python" if variant == "cifar100" else "cifar-10-batches-py")
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": train_per_class, "test": test_per_class}
    labels = {name: np.tile(np.arange(num_classes), count) for name, count in splits.items()}
    for name, fine in labels.items():
        rng.shuffle(fine)
        data = _images(fine, rng, num_classes)
        filenames = [f"{name}_{i:05d}.png".encode() for i in range(len(fine))]
        if variant == "cifar100":
            _dump(
                folder / name,
                {
                    b"filenames": filenames,
                    b"batch_label": f"{name}ing batch 1 of 1".encode(),
                    b"fine_labels": fine.tolist(),
                    b"coarse_labels": (fine // 5).tolist(),
                    b"data": data,
                },
            )
            continue
        files = [f"data_batch_{i}" for i in range(1, 6)] if name == "train" else ["test_batch"]
        for part, rows in zip(files, np.array_split(np.arange(len(fine)), len(files)), strict=True):
            _dump(
                folder / part,
                {
                    b"batch_label": part.encode(),
                    b"labels": fine[rows].tolist(),
                    b"data": data[rows],
                    b"filenames": [filenames[i] for i in rows],
                },
            )
    if variant == "cifar100":
        _dump(
            folder / "meta",
            {
                b"fine_label_names": [f"fine_{c:03d}".encode() for c in range(100)],
                b"coarse_label_names": [f"coarse_{c:02d}".encode() for c in range(20)],
            },
        )
    else:
        names = [f"class_{c}".encode() for c in range(10)]
        _dump(
            folder / "batches.meta",
            {b"num_cases_per_batch": 10000, b"label_names": names, b"num_vis": PIXELS},
        )
    return folder


def make(root: Path) -> dict:
    """Tiny CIFAR-100 under `root`; the `data.init_args` overrides that point a recipe at it."""
    write_cifar(root, "cifar100")
    return {"root": str(root)}
