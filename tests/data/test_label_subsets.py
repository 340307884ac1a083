import runpy
from pathlib import Path

import pytest
import torch

from ssl_lightning.data.image.cifar import CIFAR100DataModule
from ssl_lightning.data.image.digits import DigitsDataModule
from ssl_lightning.data.image.folder import ImageFolderDataModule
from ssl_lightning.data.label_subsets import class_balanced_counts, fraction_name, label_fraction_subset

LAYOUTS = Path(__file__).resolve().parents[1] / "layouts"


def test_counts_round_half_up_with_at_least_one_per_class():
    counts = torch.tensor([500, 450, 1300, 3, 0])
    assert class_balanced_counts(counts, 0.01).tolist() == [5, 5, 13, 1, 0]
    assert class_balanced_counts(counts, 0.1).tolist() == [50, 45, 130, 1, 0]
    assert class_balanced_counts(counts, 1.0).tolist() == [500, 450, 1300, 3, 0]
    assert class_balanced_counts(torch.tensor([15, 25]), 0.1).tolist() == [2, 3]  # 1.5 -> 2, 2.5 -> 3


def test_subset_is_class_balanced_nested_and_seeded():
    labels = torch.arange(10).repeat_interleave(torch.tensor([100, 100, 100, 100, 100, 50, 50, 50, 30, 3]))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(1))]
    one = label_fraction_subset(labels, 0.01, seed=0)
    ten = label_fraction_subset(labels, 0.1, seed=0)
    assert torch.equal(torch.bincount(labels[one], minlength=10), torch.tensor([1] * 10))
    assert torch.bincount(labels[ten], minlength=10).tolist() == [10, 10, 10, 10, 10, 5, 5, 5, 3, 1]
    assert torch.equal(one, one.sort().values) and one.unique().numel() == one.numel()
    assert set(one.tolist()) <= set(ten.tolist())  # nested for one seed
    assert torch.equal(label_fraction_subset(labels, 0.1, seed=0), ten)
    other = label_fraction_subset(labels, 0.1, seed=1)
    assert not torch.equal(other, ten)
    assert torch.equal(torch.bincount(labels[other], minlength=10), torch.bincount(labels[ten], minlength=10))
    assert torch.equal(label_fraction_subset(labels, None), torch.arange(len(labels)))
    assert torch.equal(label_fraction_subset(labels, 1.0), torch.arange(len(labels)))


def test_fraction_names():
    assert [fraction_name(f) for f in (0.01, 0.1, 0.005, None)] == [
        "1% labels",
        "10% labels",
        "0.5% labels",
        "100% labels",
    ]


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, True, "0.1"])
def test_bad_fractions_raise(fraction):
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_subset(torch.tensor([0, 1]), fraction)


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="1-D integer"):
        label_fraction_subset(torch.tensor([0.0, 1.0]), 0.5)
    with pytest.raises(ValueError, match=">= 0"):
        label_fraction_subset(torch.tensor([0, -1]), 0.5)
    with pytest.raises(ValueError, match="empty"):
        label_fraction_subset(torch.zeros(0, dtype=torch.long), 0.5)


def _datamodule(kind: str, root: Path, **kwargs):
    if kind == "digits":
        return DigitsDataModule(image_size=8, **kwargs)
    if kind == "cifar100":
        return CIFAR100DataModule(
            **runpy.run_path(str(LAYOUTS / "CIFAR100DataModule.py"))["make"](root), **kwargs
        )
    return ImageFolderDataModule(
        **runpy.run_path(str(LAYOUTS / "ImageFolderDataModule.py"))["make"](root), image_size=8, **kwargs
    )


@pytest.mark.parametrize("kind", ["digits", "cifar100", "image_folder"])
def test_datamodules_draw_the_subset_from_train_only(kind, tmp_path):
    full = _datamodule(kind, tmp_path, val_fraction=0.3) if kind != "digits" else _datamodule(kind, tmp_path)
    full.setup()
    subsets = {}
    for fraction in (0.1, 0.75):
        labelled = full.with_label_fraction(fraction)
        assert type(labelled) is type(full) and labelled.label_fraction == fraction
        labelled.setup()
        train = labelled.split_indices["train"]
        labels = labelled.sources["train"].labels
        assert set(train.tolist()) <= set(full.split_indices["train"].tolist())
        assert not set(train.tolist()) & set(labelled.split_indices["valid"].tolist())
        for split in ("valid", "test"):
            assert torch.equal(labelled.split_indices[split], full.split_indices[split])
        expected = class_balanced_counts(torch.bincount(labels[full.split_indices["train"]]), fraction)
        assert torch.equal(torch.bincount(labels[train], minlength=len(expected)), expected)
        batch = next(iter(labelled.train_dataloader()))
        assert set(batch) == {"image", "label"}
        subsets[fraction] = set(train.tolist())
    assert subsets[0.1] <= subsets[0.75] and subsets[0.1] != subsets[0.75]
