"""DabsImageFolderDataModule: ImageNet-style class folders through DABS's Resize + CenterCrop + ToTensor."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lightning.data.dabs.folders import DabsImageFolderDataModule
from ssl_lightning.nn.input_specs import InputSpec

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
CLASSES = ("n01440764", "n01443537", "n01484850")


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("imagenet")
    return runpy.run_path(str(LAYOUTS / "DabsImageFolderDataModule.py"))["make"](root)


def _dabs_pixels(path: Path, size: int) -> torch.Tensor:
    """DABS's transform written out: PIL bilinear resize of both sides to size, /255, CHW."""
    resized = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
    return torch.from_numpy(resized.transpose(2, 0, 1).astype(np.float32) / 255)


def test_small_folders_serve_sorted_classes_in_dabs_batches(layout):
    data = DabsImageFolderDataModule(**layout)
    data.setup()
    assert data.input_specs == [InputSpec("image", "2d", (32, 32), 4, 3)]
    assert data.classes == CLASSES and data.num_classes == 3 and data.label_type == "single"
    sizes = {split: len(data.dataset(split, "subclips")) for split in ("train", "valid", "test")}
    assert sizes == {"train": 12, "valid": 6, "test": 6}  # notes.txt skipped; valid = test
    assert data.canonical and "valid = test" in data.split_note
    root = Path(layout["root"])
    item = data.dataset("test", "subclips")[3]  # class 1 (2 per class, files sorted): its 2nd image
    path = sorted((root / "val" / CLASSES[1]).glob("*_val_1.*"))[0]
    assert int(item["label"]) == 1 and torch.equal(item["image"], _dabs_pixels(path, 32))
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"image", "label", "clip_id"} and batch["image"].shape == (4, 3, 32, 32)
    assert batch["image"].dtype == torch.float32 and batch["label"].dtype == torch.int64
    order = torch.cat([b["clip_id"] for b in data.test_dataloader()])
    assert order.tolist() == list(range(6))


def test_full_size_stretches_to_224_without_keeping_the_aspect_ratio(layout):
    data = DabsImageFolderDataModule(**{**layout, "small": False})
    data.setup()
    spec = data.input_specs[0]
    assert spec == InputSpec("image", "2d", (224, 224), 16, 3) and spec.num_tokens == 196
    path = sorted((Path(layout["root"]) / "train" / CLASSES[0]).iterdir())[0]  # 40 x 30 png
    assert Image.open(path).size == (40, 30)
    assert torch.equal(data.dataset("train", "random_crop")[0]["image"], _dabs_pixels(path, 224))


def test_val_fraction_holds_out_train_class_balanced(layout):
    data = DabsImageFolderDataModule(**{**layout, "val_fraction": 0.5})
    data.setup()
    sizes = {split: len(data.dataset(split, "subclips")) for split in ("train", "valid", "test")}
    assert sizes == {"train": 6, "valid": 6, "test": 6}
    labels = sorted(int(data.dataset("valid", "subclips")[i]["label"]) for i in range(6))
    assert labels == [0, 0, 1, 1, 2, 2] and not data.canonical and "held out" in data.split_note


def test_other_folder_names_and_errors(tmp_path, layout):
    root = Path(layout["root"])
    with pytest.raises(FileNotFoundError, match="validation"):
        DabsImageFolderDataModule(str(root), test_dir="validation").setup()
    with pytest.raises(FileNotFoundError, match="class sub-folders"):
        (tmp_path / "train").mkdir()
        DabsImageFolderDataModule(str(tmp_path)).setup()
    with pytest.raises(ValueError, match="val_fraction must lie in"):
        DabsImageFolderDataModule(str(root), val_fraction=1)
    broken = tmp_path / "broken"
    for split in ("train", "val"):
        (broken / split / "a").mkdir(parents=True)
        (broken / split / "a" / "x.jpg").write_bytes(b"not a jpeg")
    data = DabsImageFolderDataModule(str(broken))
    data.setup()
    with pytest.raises(ValueError, match=r"cannot decode image .*x\.jpg"):
        data.dataset("test", "subclips")[0]
