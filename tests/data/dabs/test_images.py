import pickle
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lightning.data.dabs.images import DabsCIFAR10DataModule, DabsDigitsDataModule
from ssl_lightning.data.image.digits import DigitsDataModule
from ssl_lightning.nn.input_specs import InputSpec

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar10")
    runpy.run_path(str(LAYOUTS / "CIFAR10DataModule.py"))["make"](root)
    return root


def _pickle(path: Path) -> dict:
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def test_digits_are_the_digits_datamodule_images_and_split_as_small_dabs_images():
    dabs = DabsDigitsDataModule(batch_size=8)
    dabs.setup()
    digits = DigitsDataModule(image_size=32)
    digits.setup()
    assert dabs.input_specs == [InputSpec("image", "2d", (32, 32), 4, 3)]
    assert dabs.input_specs[0].num_tokens == 64 and dabs.num_classes == 10 and dabs.label_type == "single"
    assert not dabs.canonical and "70/15/15" in dabs.split_note
    for split in ("train", "valid", "test"):
        ours, reference = dabs.dataset(split, "subclips"), digits.dataset(split)
        assert len(ours) == len(reference)
        for index in (0, len(ours) - 1):
            assert torch.equal(ours[index]["image"], reference[index]["image"])
            assert ours[index]["label"] == reference[index]["label"]
    assert [len(dabs.dataset(split, "random_crop")) for split in ("train", "valid", "test")] == [
        1257,
        270,
        270,
    ]


def test_digits_loaders_batch_format_order_and_seeded_shuffle():
    first, again = DabsDigitsDataModule(batch_size=8), DabsDigitsDataModule(batch_size=8)
    for datamodule in (first, again):
        datamodule.setup()
    batch = next(iter(first.train_dataloader()))
    assert set(batch) == {"image", "label", "clip_id"}
    assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and batch["clip_id"].dtype == torch.int64
    assert torch.equal(batch["clip_id"], next(iter(again.train_dataloader()))["clip_id"])
    assert batch["clip_id"].tolist() != list(range(8))  # shuffled
    test = list(first.test_dataloader())
    assert torch.cat([b["clip_id"] for b in test]).tolist() == list(range(270))
    assert next(iter(first.subclip_dataloader("valid", batch_size=3)))["clip_id"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="crops must be None"):
        first.subclip_dataloader("test", crops=5)
    with pytest.raises(ValueError, match="mode must be one of"):
        first.dataset("test", "crops")
    with pytest.raises(ValueError, match="split_fractions must be 3 positive"):
        DabsDigitsDataModule(split_fractions=(0.5, 0.5, 0.0))


def test_cifar10_small_serves_the_pickled_pixels_as_they_are(cifar_root):
    datamodule = DabsCIFAR10DataModule(str(cifar_root), batch_size=4)
    datamodule.setup()
    assert datamodule.input_specs == [InputSpec("image", "2d", (32, 32), 4, 3)]
    assert datamodule.classes == tuple(f"class_{i}" for i in range(10)) and datamodule.num_classes == 10
    assert datamodule.canonical and "valid = test" in datamodule.split_note
    test = _pickle(cifar_root / "cifar-10-batches-py" / "test_batch")
    item = datamodule.dataset("test", "subclips")[3]
    expected = torch.from_numpy(test[b"data"][3].reshape(3, 32, 32).astype(np.float32) / 255)
    assert torch.equal(item["image"], expected) and int(item["label"]) == test[b"labels"][3]
    sizes = {split: len(datamodule.dataset(split, "subclips")) for split in ("train", "valid", "test")}
    assert sizes == {"train": 30, "valid": 20, "test": 20}  # valid = test: DABS has no valid split
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and set(batch) == {"image", "label", "clip_id"}


def test_cifar10_full_size_is_a_pil_bilinear_resize_to_224(cifar_root):
    datamodule = DabsCIFAR10DataModule(str(cifar_root), small=False, batch_size=2)
    datamodule.setup()
    spec = datamodule.input_specs[0]
    assert spec == InputSpec("image", "2d", (224, 224), 16, 3) and spec.num_tokens == 196
    train = _pickle(cifar_root / "cifar-10-batches-py" / "data_batch_1")
    pixels = train[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    resized = np.asarray(Image.fromarray(pixels).resize((224, 224), Image.Resampling.BILINEAR))
    expected = torch.from_numpy(resized.transpose(2, 0, 1).astype(np.float32) / 255)
    assert torch.equal(datamodule.dataset("train", "random_crop")[0]["image"], expected)


def test_cifar10_val_fraction_holds_out_train_and_is_not_canonical(cifar_root):
    datamodule = DabsCIFAR10DataModule(str(cifar_root), val_fraction=0.4)
    datamodule.setup()
    sizes = {split: len(datamodule.dataset(split, "subclips")) for split in ("train", "valid", "test")}
    assert sizes == {"train": 20, "valid": 10, "test": 20}
    assert not datamodule.canonical and "held out as valid" in datamodule.split_note
    labels = [int(datamodule.dataset("valid", "subclips")[i]["label"]) for i in range(10)]
    assert sorted(labels) == list(range(10))  # class-balanced hold-out


def test_cifar10_errors_say_what_to_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        DabsCIFAR10DataModule(str(tmp_path)).setup()
    with pytest.raises(ValueError, match="val_fraction must lie in"):
        DabsCIFAR10DataModule(str(tmp_path), val_fraction=1.0)
