import pickle
import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lightning.data.image.cifar import CIFAR10DataModule, CIFAR100DataModule

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    assert runpy.run_path(str(LAYOUTS / "CIFAR100DataModule.py"))["make"](root) == {"root": str(root)}
    runpy.run_path(str(LAYOUTS / "CIFAR10DataModule.py"))["make"](root)
    return root


def _pickle(path: Path) -> dict:
    with path.open("rb") as f:
        return pickle.load(f, encoding="bytes")


def test_cifar100_reads_the_pickles_pixel_for_pixel(cifar_root):
    datamodule = CIFAR100DataModule(str(cifar_root), batch_size=8)
    datamodule.setup()
    assert {split: len(ids) for split, ids in datamodule.split_indices.items()} == {
        "train": 300,
        "valid": 200,
        "test": 200,
    }
    assert datamodule.sources["valid"] is datamodule.sources["test"]  # val_fraction=0: valid = test
    assert datamodule.num_classes == 100 and datamodule.classes[7] == "fine_007"
    test = _pickle(cifar_root / "cifar-100-python" / "test")
    item = datamodule.dataset("test", with_clip_id=True)[5]
    row = test[b"data"][5].astype(np.float32) / 255
    expected = torch.from_numpy(row.reshape(3, 32, 32))
    torch.testing.assert_close(item["image"], expected, rtol=0, atol=1e-7)
    assert int(item["label"]) == test[b"fine_labels"][5] and int(item["clip_id"]) == 5
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (8, 3, 32, 32) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64 and set(batch) == {"image", "label"}


def test_root_may_be_the_folder_and_labels_coarse(cifar_root):
    datamodule = CIFAR100DataModule(str(cifar_root / "cifar-100-python"), labels="coarse", image_size=16)
    datamodule.setup()
    assert datamodule.num_classes == 20 and datamodule.classes[:2] == ("coarse_00", "coarse_01")
    train = _pickle(cifar_root / "cifar-100-python" / "train")
    torch.testing.assert_close(datamodule.sources["train"].labels, torch.tensor(train[b"coarse_labels"]))
    item = datamodule.dataset("train")[0]
    assert item["image"].shape == (3, 16, 16) and 0 <= item["image"].min() and item["image"].max() <= 1
    expected = torch.from_numpy(train[b"data"][0].reshape(3, 32, 32).astype(np.float32) / 255)
    torch.testing.assert_close(item["image"].mean(dim=(1, 2)), expected.mean(dim=(1, 2)), atol=1e-3, rtol=0)


def test_val_fraction_holds_out_a_class_balanced_part_of_train(cifar_root):
    datamodule = CIFAR100DataModule(str(cifar_root), val_fraction=0.3, seed=3)
    datamodule.setup()
    train, valid = datamodule.split_indices["train"], datamodule.split_indices["valid"]
    labels = datamodule.sources["train"].labels
    assert datamodule.sources["valid"] is datamodule.sources["train"]
    assert torch.equal(torch.bincount(labels[valid], minlength=100), torch.ones(100, dtype=torch.long))
    assert not set(train.tolist()) & set(valid.tolist()) and len(train) + len(valid) == 300


def test_cifar10_concatenates_the_five_batches(cifar_root):
    datamodule = CIFAR10DataModule(str(cifar_root), label_fraction=0.5)
    datamodule.setup()
    folder = cifar_root / "cifar-10-batches-py"
    labels = [label for i in range(1, 6) for label in _pickle(folder / f"data_batch_{i}")[b"labels"]]
    torch.testing.assert_close(datamodule.sources["train"].labels, torch.tensor(labels))
    assert datamodule.num_classes == 10 and datamodule.classes[3] == "class_3"
    assert len(datamodule.split_indices["train"]) == 20  # round(0.5 * 3) = 2 of 3 per class
    assert len(datamodule.split_indices["test"]) == 20


def test_missing_and_broken_files_raise_clear_errors(tmp_path, cifar_root):
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python/meta.*cifar-100-python\.tar\.gz"):
        CIFAR100DataModule(str(tmp_path)).setup()
    broken = tmp_path / "cifar-100-python"
    broken.mkdir()
    for name in ("meta", "train"):
        (broken / name).write_bytes((cifar_root / "cifar-100-python" / name).read_bytes())
    with pytest.raises(FileNotFoundError, match=r"lacks \['test'\]"):
        CIFAR100DataModule(str(tmp_path)).setup()
    (broken / "test").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="test is not a readable CIFAR pickle"):
        CIFAR100DataModule(str(tmp_path)).setup()
    content = _pickle(cifar_root / "cifar-100-python" / "test")
    del content[b"fine_labels"]
    (broken / "test").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(KeyError, match="no key 'fine_labels'"):
        CIFAR100DataModule(str(tmp_path)).setup()
    content[b"fine_labels"] = [100] * len(content[b"data"])
    (broken / "test").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=r"outside \[0, 100\)"):
        CIFAR100DataModule(str(tmp_path)).setup()
    content[b"fine_labels"], content[b"data"] = [0] * 4, np.zeros((4, 1024), dtype=np.uint8)
    (broken / "test").write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(ValueError, match=r"uint8 \[N, 3072\]"):
        CIFAR100DataModule(str(tmp_path)).setup()


def test_bad_arguments_raise(cifar_root):
    with pytest.raises(ValueError, match="labels must be one of"):
        CIFAR100DataModule(str(cifar_root), labels="medium")
    with pytest.raises(ValueError, match="val_fraction"):
        CIFAR100DataModule(str(cifar_root), val_fraction=1.0)
    with pytest.raises(ValueError, match="label_fraction"):
        CIFAR100DataModule(str(cifar_root), label_fraction=0.0)
    with pytest.raises(ValueError, match="image_size"):
        CIFAR10DataModule(str(cifar_root), image_size=0)
