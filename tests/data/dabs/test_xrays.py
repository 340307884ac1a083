"""DABS chest x-rays: CheXpert (5 labels, U-Zeros) and ChestX-ray8 (8 labels, DABS's RandomState(42) 90/10
split) as multi-hot DABS batches through Resize((224, 224)) + ToTensor, a short e-Mix fit on them and
DABS's linear evaluation scored by macro AUROC."""

import csv
import runpy
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.data.dabs.xrays import (
    ChestXray8DataModule,
    CheXpertDataModule,
    find_chexpert_folder,
    read_chexpert_csv,
    xray8_multi_hot,
    xray8_split,
)
from ssl_lightning.eval.dabs import DABS_TASKS
from ssl_lightning.eval.evaluate import SuiteRunner
from ssl_lightning.eval.probe import DABS_PROBE
from ssl_lightning.eval.suites import Suite
from ssl_lightning.methods import EMix
from ssl_lightning.nn.input_specs import InputSpec

LAYOUTS = Path(__file__).resolve().parents[2] / "layouts"
CHEXPERT = runpy.run_path(str(LAYOUTS / "CheXpertDataModule.py"))
XRAY8 = runpy.run_path(str(LAYOUTS / "ChestXray8DataModule.py"))
SPEC = InputSpec("image", "2d", (224, 224), 16, 3)

# DABS's CheXpert labels (Atelectasis, Cardiomegaly, Consolidation, Edema, Pleural Effusion) of the layout's
# rows, worked out by hand from its CSVs: blank and -1.0 are 0.
CHEXPERT_TRAIN = [
    [0, 0, 0, 0, 0],  # only No Finding, Pneumothorax 0.0, Support Devices
    [0, 0, 0, 0, 0],  # all five uncertain (-1.0)
    [1, 0, 0, 0, 1],  # Atelectasis, Pleural Effusion; Edema 0.0
    [0, 1, 1, 0, 0],  # Cardiomegaly, Consolidation; Edema -1.0
    [0, 0, 0, 1, 0],  # Edema; Atelectasis and Pleural Effusion 0.0
    [0, 1, 0, 1, 0],  # Cardiomegaly, Edema; Pleural Effusion -1.0; Pneumonia not kept
]
CHEXPERT_TEST = [[0, 1, 0, 0, 0], [1, 0, 0, 0, 1], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0]]

# ChestX-ray8 labels (Atelectasis, Cardiomegaly, Effusion, Infiltration, Mass, Nodule, Pneumonia,
# Pneumothorax) of the layout's images, by hand from their Finding Labels.
XRAY8_LABELS = {
    "00000001_000.png": [0, 1, 0, 0, 0, 0, 0, 0],  # Cardiomegaly
    "00000001_001.png": [0, 1, 0, 0, 0, 0, 0, 0],  # Cardiomegaly|Emphysema
    "00000001_002.png": [0, 1, 1, 0, 0, 0, 0, 0],  # Cardiomegaly|Effusion
    "00000002_000.png": [0, 0, 0, 0, 0, 0, 0, 0],  # No Finding
    "00000003_000.png": [0, 0, 0, 0, 0, 0, 0, 0],  # Hernia
    "00000003_001.png": [0, 0, 0, 1, 1, 1, 0, 0],  # Infiltration|Mass|Nodule
    "00000004_000.png": [0, 0, 0, 0, 1, 1, 0, 0],  # Mass|Nodule
    "00000005_000.png": [0, 0, 0, 0, 0, 0, 1, 1],  # Pneumonia|Pneumothorax
    "00000005_001.png": [1, 0, 0, 0, 0, 0, 0, 0],  # Atelectasis|Pleural_Thickening
    "00000006_000.png": [0, 0, 1, 0, 0, 0, 0, 0],  # Consolidation|Edema|Effusion|Fibrosis
}
NAMES = sorted(XRAY8_LABELS)
# numpy.random.RandomState(42).shuffle of 10 items gives the order [8, 1, 5, 0, 7, 2, 9, 4, 3, 6]:
# int(0.9 * 10) = 9 train images in that order, the 7th sorted name alone in test.
XRAY8_TRAIN = [NAMES[i] for i in (8, 1, 5, 0, 7, 2, 9, 4, 3)]
XRAY8_TEST = ["00000004_000.png"]
VOCABULARY = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
    "No Finding",
)
"""ChestX-ray8's 15 `Finding Labels` names."""


@pytest.fixture(scope="module")
def chexpert(tmp_path_factory) -> dict:
    return CHEXPERT["make"](tmp_path_factory.mktemp("chexpert"))


@pytest.fixture(scope="module")
def xray8(tmp_path_factory) -> dict:
    return XRAY8["make"](tmp_path_factory.mktemp("xray8"))


def _labels(data, split: str) -> list[list[float]]:
    dataset = data.dataset(split, "subclips")
    return [dataset[i]["label"].tolist() for i in range(len(dataset))]


def _dabs_pixels(path: Path) -> torch.Tensor:
    """DABS's x-ray transform written out: RGB, PIL bilinear resize of both sides to 224, /255, CHW."""
    resized = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
    return torch.from_numpy(resized.transpose(2, 0, 1).astype(np.float32) / 255)


def test_chexpert_keeps_five_labels_u_zeros_train_csv_train_valid_csv_test(chexpert):
    data = CheXpertDataModule(**chexpert)
    data.setup()
    assert data.input_specs == [SPEC] and data.input_specs[0].num_tokens == 196
    assert data.classes == ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
    assert data.label_type == "multi" and data.num_classes == 5
    assert data.canonical and data.split_note.startswith("CheXpert train.csv (train) and CheXpert valid.csv")
    assert _labels(data, "train") == CHEXPERT_TRAIN
    assert _labels(data, "test") == CHEXPERT_TEST and _labels(data, "valid") == CHEXPERT_TEST  # valid = test
    item = data.dataset("train", "random_crop")[3]
    path = Path(chexpert["root"]) / "CheXpert-v1.0-small/train/patient00003/study1/view1_frontal.jpg"
    assert item["label"].dtype == torch.float32 and torch.equal(item["image"], _dabs_pixels(path))


def test_chexpert_columns_are_read_by_header_name(chexpert, tmp_path):
    folder = Path(chexpert["root"]) / "CheXpert-v1.0-small"
    with (folder / "train.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    order = [0, *reversed(range(1, len(rows[0])))]  # Path first, then every other column reversed
    shuffled = tmp_path / "train.csv"
    with shuffled.open("w", newline="") as file:
        csv.writer(file).writerows([[row[i] for i in order] for row in rows])
    paths, labels = read_chexpert_csv(shuffled, Path(chexpert["root"]))
    assert labels.tolist() == CHEXPERT_TRAIN and labels.dtype == torch.float32
    assert paths[1] == folder / "train/patient00002/study2/view1_frontal.jpg"


def test_chexpert_prefers_the_full_resolution_folder(tmp_path):
    CHEXPERT["write_chexpert"](tmp_path, "CheXpert-v1.0-small")
    assert find_chexpert_folder(tmp_path) == tmp_path / "CheXpert-v1.0-small"
    CHEXPERT["write_chexpert"](tmp_path, "CheXpert-v1.0")
    assert find_chexpert_folder(tmp_path) == tmp_path / "CheXpert-v1.0"
    shutil.rmtree(tmp_path / "CheXpert-v1.0-small")
    data = CheXpertDataModule(str(tmp_path))
    data.setup()
    assert _labels(data, "train") == CHEXPERT_TRAIN and len(data.dataset("test", "subclips")) == 4


def test_xray8_split_is_dabs_randomstate_42_shuffle_then_90_percent():
    assert xray8_split(NAMES) == (XRAY8_TRAIN, XRAY8_TEST)
    for count in (10, 37, 101):  # DABS shuffles the array of names itself: the same permutation
        names = [f"{i:08d}_000.png" for i in range(count)]
        official = np.array(names)
        np.random.RandomState(42).shuffle(official)
        cut = int(count * 0.9)
        assert xray8_split(names) == (official[:cut].tolist(), official[cut:].tolist())


def test_xray8_labels_are_the_eight_pathologies_of_the_bar_separated_list():
    assert xray8_multi_hot("Cardiomegaly|Effusion") == [0, 1, 1, 0, 0, 0, 0, 0]
    assert xray8_multi_hot("No Finding") == [0.0] * 8
    assert xray8_multi_hot("|".join(VOCABULARY)) == [1.0] * 8
    for name in VOCABULARY:  # DABS's substring test `pathology in label_str` agrees on every name
        assert xray8_multi_hot(name) == [float(p in name) for p in ChestXray8DataModule.classes]


def test_xray8_reads_images_and_metadata_split_as_dabs(xray8):
    data = ChestXray8DataModule(**xray8)
    data.setup()
    assert data.input_specs == [SPEC] and data.label_type == "multi" and data.num_classes == 8
    assert data.classes == (
        "Atelectasis",
        "Cardiomegaly",
        "Effusion",
        "Infiltration",
        "Mass",
        "Nodule",
        "Pneumonia",
        "Pneumothorax",
    )
    assert data.canonical and "RandomState(42)" in data.split_note and "valid = test" in data.split_note
    assert _labels(data, "train") == [XRAY8_LABELS[name] for name in XRAY8_TRAIN]  # notes.txt left out
    assert _labels(data, "test") == [XRAY8_LABELS[name] for name in XRAY8_TEST]
    assert len(data.dataset("valid", "subclips")) == 1
    rgba = data.dataset("train", "subclips")[XRAY8_TRAIN.index("00000005_000.png")]["image"]
    assert torch.equal(rgba, _dabs_pixels(Path(xray8["root"]) / "images" / "00000005_000.png"))


@pytest.mark.parametrize("metadata", ["metadata.csv", "Data_Entry_2017_v2020.csv"])
def test_xray8_reads_the_metadata_under_its_other_names(tmp_path, metadata):
    XRAY8["write_xray8"](tmp_path, metadata)
    data = ChestXray8DataModule(str(tmp_path))
    data.setup()
    assert _labels(data, "test") == [[0, 0, 0, 0, 1, 1, 0, 0]]


def test_resize_stretches_without_cropping_or_normalising(xray8):
    data = ChestXray8DataModule(**xray8)
    data.setup()
    image = data.dataset("test", "subclips")[0]["image"]  # 16 x 4, its left quarter black
    assert image.shape == (3, 224, 224) and image.dtype == torch.float32
    assert torch.equal(image, _dabs_pixels(Path(xray8["root"]) / "images" / "00000004_000.png"))
    assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])  # grey made RGB
    # a quarter of 224 is 56: black up to column ~49, white from ~63 (the bilinear ramp between), in every
    # row; a resize of the short side and a centre crop would have kept the middle only, all white
    assert image[:, :, :45].eq(0).all() and image[:, :, 67:].eq(1).all()


def test_batches_are_multi_hot_dabs_batches(chexpert, xray8):
    for data, classes in ((CheXpertDataModule(**chexpert), 5), (ChestXray8DataModule(**xray8), 8)):
        data.setup()
        batch = next(iter(data.train_dataloader()))
        assert set(batch) == {"image", "label", "clip_id"}
        assert batch["image"].shape == (4, 3, 224, 224) and batch["image"].dtype == torch.float32
        assert 0 <= batch["image"].min() and batch["image"].max() <= 1
        assert batch["label"].shape == (4, classes) and batch["label"].dtype == torch.float32
        assert batch["clip_id"].dtype == torch.int64
    data = CheXpertDataModule(**chexpert)
    data.setup()
    test = list(data.test_dataloader())
    assert torch.cat([b["clip_id"] for b in test]).tolist() == [0, 1, 2, 3]
    assert torch.cat([b["label"] for b in test]).tolist() == CHEXPERT_TEST


def test_val_fraction_holds_out_a_seeded_random_share_of_train(chexpert):
    data = CheXpertDataModule(**chexpert, val_fraction=0.5)
    data.setup()
    sizes = [len(data.dataset(split, "subclips")) for split in ("train", "valid", "test")]
    assert sizes == [3, 3, 4] and not data.canonical and "held out as valid" in data.split_note
    # the layout's train.csv row r is one grey level, 20 + 30 r: the two halves partition the six rows
    rows = {
        split: [
            round((item["image"][0, 0, 0].item() * 255 - 20) / 30) for item in data.dataset(split, "subclips")
        ]
        for split in ("train", "valid")
    }
    assert sorted(rows["train"] + rows["valid"]) == list(range(6))
    assert [CHEXPERT_TRAIN[r] for r in rows["valid"]] == _labels(data, "valid")
    again = CheXpertDataModule(**chexpert, val_fraction=0.5)
    again.setup()
    assert _labels(again, "valid") == _labels(data, "valid")
    with pytest.raises(ValueError, match="leaves none to train on"):
        CheXpertDataModule(**chexpert, val_fraction=0.95).setup()
    with pytest.raises(ValueError, match="val_fraction must lie in"):
        ChestXray8DataModule("x", val_fraction=1.0)


def test_chexpert_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"stanfordmlgroup.*CheXpert-v1\.0-small\.zip"):
        CheXpertDataModule(str(tmp_path)).setup()
    folder = CHEXPERT["write_chexpert"](tmp_path)
    train = (folder / "train.csv").read_text()
    (folder / "valid.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"valid\.csv does not exist"):
        CheXpertDataModule(str(tmp_path)).setup()
    CHEXPERT["write_chexpert"](tmp_path)
    (folder / "train.csv").write_text(train.replace(",Edema,", ",Oedema,"))
    with pytest.raises(ValueError, match=r"train\.csv: the header lacks column\(s\) \['Edema'\]"):
        CheXpertDataModule(str(tmp_path)).setup()
    (folder / "train.csv").write_text(
        train.replace("Female,87,Frontal,AP,,,-1.0", "Female,87,Frontal,AP,,,2.0")
    )
    with pytest.raises(ValueError, match=r"train\.csv line 3: Cardiomegaly is '2\.0'"):
        CheXpertDataModule(str(tmp_path)).setup()
    (folder / "train.csv").write_text(train)
    (folder / "train/patient00004/study1/view1_frontal.jpg").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 image\(s\) missing .*patient00004.*holds CheXpert-v1\.0-small"
    ):
        CheXpertDataModule(str(tmp_path)).setup()
    CHEXPERT["write_chexpert"](tmp_path)
    (folder / "valid/patient64543/study1/view1_frontal.jpg").write_bytes(b"not a jpeg")
    data = CheXpertDataModule(str(tmp_path))
    data.setup()
    with pytest.raises(ValueError, match=r"cannot decode image .*patient64543.*view1_frontal\.jpg"):
        data.dataset("test", "subclips")[3]


def test_xray8_errors_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"images_\*\.tar\.gz.*ChestXray-NIHCC"):
        ChestXray8DataModule(str(tmp_path)).setup()
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no .png image"):
        ChestXray8DataModule(str(tmp_path)).setup()
    XRAY8["write_xray8"](tmp_path)
    (tmp_path / "Data_Entry_2017.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"no ChestX-ray8 metadata .*Data_Entry_2017\.csv"):
        ChestXray8DataModule(str(tmp_path)).setup()
    XRAY8["write_xray8"](tmp_path)
    metadata = (tmp_path / "Data_Entry_2017.csv").read_text()
    (tmp_path / "Data_Entry_2017.csv").write_text(metadata.replace("Finding Labels", "Findings"))
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['Finding Labels'\]"):
        ChestXray8DataModule(str(tmp_path)).setup()
    XRAY8["write_xray8"](tmp_path)
    shutil.copy(tmp_path / "images" / "00000001_000.png", tmp_path / "images" / "00000009_000.png")
    with pytest.raises(
        ValueError, match=r"1 image\(s\) .* have no row in the metadata, e.g\. 00000009_000\.png"
    ):
        ChestXray8DataModule(str(tmp_path)).setup()
    (tmp_path / "images" / "00000009_000.png").unlink()
    (tmp_path / "images" / "00000004_000.png").write_bytes(b"truncated")
    data = ChestXray8DataModule(str(tmp_path))
    data.setup()
    with pytest.raises(ValueError, match=r"cannot decode image .*00000004_000\.png"):
        data.dataset("test", "subclips")[0]


def test_emix_fits_on_chexpert_and_dabs_probe_scores_it_by_macro_auroc(chexpert):
    data = CheXpertDataModule(**chexpert)
    encoder = DabsTransformer([SPEC], dim=16, depth=1, heads=2, dim_head=8, mlp_dim=32, out_dim=8)
    method = EMix(encoder)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(method, datamodule=data)
    assert trainer.global_step == 2 and torch.isfinite(trainer.callback_metrics["train/loss"])

    def datamodule(task, root=None, fold=None, **kwargs):
        return CheXpertDataModule(root, **kwargs)

    suite = Suite("xrays", {"chexpert": DABS_TASKS["chexpert"]}, datamodule, probe=DABS_PROBE)
    runner = SuiteRunner(suite, data_root=chexpert["root"], batch_size=4, device="cpu", progress=False)
    assert runner.probe is DABS_PROBE
    (result,) = runner.probe_model("emix", method)
    assert result.metric == "auroc" and 0.0 <= result.value <= 1.0
    assert (result.num_train, result.num_test) == (6, 4)
    assert result.extra["canonical"] is True and "CheXpert valid.csv" in result.extra["split_note"]
