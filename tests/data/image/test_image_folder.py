import runpy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lightning.data.image.folder import ImageFolderDataModule, load_image

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"


@pytest.fixture
def folder_root(tmp_path) -> Path:
    assert runpy.run_path(str(LAYOUTS / "ImageFolderDataModule.py"))["make"](tmp_path) == {
        "root": str(tmp_path)
    }
    return tmp_path


def test_layout_is_read_with_sorted_classes_and_index_order(folder_root):
    datamodule = ImageFolderDataModule(str(folder_root), image_size=16, batch_size=5)
    assert datamodule.classes == ("n01440764", "n01443537", "n01484850") and datamodule.num_classes == 3
    datamodule.setup()
    assert {split: len(ids) for split, ids in datamodule.split_indices.items()} == {
        "train": 12,
        "valid": 6,
        "test": 6,
    }
    train = datamodule.sources["train"]
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert [p.name for p in train.paths[:2]] == ["n01440764_train_0.png", "n01440764_train_1.JPEG"]
    batch = next(iter(datamodule.subclip_dataloader("test")))
    assert batch["image"].shape == (5, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert 0 <= batch["image"].min() and batch["image"].max() <= 1
    assert batch["clip_id"].tolist() == [0, 1, 2, 3, 4] and batch["label"].tolist() == [0, 0, 1, 1, 2]
    assert set(next(iter(datamodule.train_dataloader()))) == {"image", "label"}


def test_resize_then_center_crop_has_known_pixels(tmp_path):
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)  # 4 wide, 2 high: columns 0..3 hold 0, 85, 170, 255
    pixels[:, :, :] = np.array([0, 85, 170, 255], dtype=np.uint8)[None, :, None]
    Image.fromarray(pixels).save(tmp_path / "stripes.png")
    image = load_image(tmp_path / "stripes.png", image_size=2, resize_size=2)  # no resize, crop columns 1-2
    torch.testing.assert_close(image, torch.tensor([85.0, 170.0]).div(255).expand(3, 2, 2))
    upscaled = load_image(tmp_path / "stripes.png", image_size=4, resize_size=4)  # 8x4, crop columns 2-5
    assert upscaled.shape == (3, 4, 4)
    assert torch.all(upscaled[:, :, 0] < upscaled[:, :, 3])


def test_bad_files_and_layouts_raise(folder_root, tmp_path_factory):
    broken = folder_root / "train" / "n01443537" / "broken.png"
    broken.write_bytes(b"no png here")
    datamodule = ImageFolderDataModule(str(folder_root), image_size=8)
    datamodule.setup()
    index = [path.name for path in datamodule.sources["train"].paths].index("broken.png")
    with pytest.raises(ValueError, match="cannot decode image .*broken.png"):
        datamodule.dataset("train")[index]
    flat = tmp_path_factory.mktemp("flat")
    (flat / "train" / "a").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(flat / "train" / "a" / "x.png")
    (flat / "val").mkdir()
    Image.new("RGB", (4, 4)).save(flat / "val" / "x.png")
    with pytest.raises(FileNotFoundError, match="no class sub-folders"):
        ImageFolderDataModule(str(flat)).setup()
    (flat / "val" / "b").mkdir()
    with pytest.raises(ValueError, match=r"class folders \['b'\] that the train folder lacks"):
        ImageFolderDataModule(str(flat)).setup()
    (flat / "train" / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="has no image files"):
        ImageFolderDataModule(str(flat)).setup()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataModule(str(flat / "nowhere")).setup()


def test_subset_file_names_the_labelled_images(folder_root):
    subset = folder_root / "1percent.txt"
    subset.write_text("n01440764_train_2.png\n\nn01484850/n01484850_train_1.JPEG\n")
    datamodule = ImageFolderDataModule(str(folder_root), image_size=8, subset_file=str(subset))
    datamodule.setup()
    assert datamodule.split_indices["train"].tolist() == [2, 9]
    subset.write_text("n01440764_train_9.png\n")
    with pytest.raises(ValueError, match="not train images"):
        ImageFolderDataModule(str(folder_root), subset_file=str(subset)).setup()
    duplicate = folder_root / "train" / "n01443537" / "n01440764_train_2.png"
    duplicate.write_bytes((folder_root / "train" / "n01440764" / "n01440764_train_2.png").read_bytes())
    subset.write_text("n01440764_train_2.png\n")
    with pytest.raises(ValueError, match="several class folders"):
        ImageFolderDataModule(str(folder_root), subset_file=str(subset)).setup()
    with pytest.raises(ValueError, match="not both"):
        ImageFolderDataModule(str(folder_root), subset_file=str(subset), label_fraction=0.1)


def test_bad_arguments_raise(folder_root):
    with pytest.raises(ValueError, match="image_size"):
        ImageFolderDataModule(str(folder_root), image_size=-1)
    with pytest.raises(ValueError, match="below image_size"):
        ImageFolderDataModule(str(folder_root), image_size=32, resize_size=16)
    with pytest.raises(ValueError, match="val_fraction"):
        ImageFolderDataModule(str(folder_root), val_fraction=-0.1)
