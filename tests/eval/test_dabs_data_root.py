"""The `dabs` suite builds the chest x-ray, captioned-image, AudioMNIST, LibriSpeech-speaker and PAMAP2 tasks
from one data root laid out as `DABS_DATA` names the folders (tiny copies from tests/layouts), with DABS's
arguments (48 kHz AudioMNIST, no training on the speaker task's test half, subject 105 scored)."""

import runpy
from pathlib import Path

import pytest
import torch

from ssl_lightning.eval.dabs import DABS_DATA, DABS_TASKS, dabs_datamodule

LAYOUTS = Path(__file__).parents[1] / "layouts"
TASKS = ("chexpert", "xray8", "audio_mnist", "librispeech_speaker", "pamap2", "vqa", "mismatched_caption")


def input_shape(spec) -> tuple[int, ...]:
    """An item's input shape per spec kind: tokens [L], 1d [T, C], 2d [C, H, W]."""
    if spec.kind == "tokens":
        return (spec.size,)
    return (spec.size, spec.in_channels) if spec.kind == "1d" else (spec.in_channels, *spec.size)


def layout(name: str) -> dict:
    return runpy.run_path(str(LAYOUTS / f"{name}.py"))


@pytest.fixture(scope="module")
def dabs_root(tmp_path_factory) -> Path:
    """The tiny data sets under one root, each in the folder DABS_DATA names."""
    root = tmp_path_factory.mktemp("dabs")
    layout("CheXpertDataModule")["write_chexpert"](root)
    layout("ChestXray8DataModule")["write_xray8"](root / "xray8")
    layout("AudioMNISTDataModule")["make"](root)
    layout("LibriSpeechSpeakerDataModule")["write_dev_clean"](root)
    layout("PAMAP2DataModule")["make"](root)
    captioned = layout("captioned")
    captioned["write_coco"](root / "mscoco")
    captioned["write_vqa"](root / "vqa")
    captioned["write_bert_vocab"](root / "bert-base-uncased")
    return root


def test_each_task_folder_is_where_dabs_data_looks(dabs_root):
    for task in TASKS:
        assert (dabs_root / DABS_DATA[task].folder).is_dir(), task


@pytest.mark.parametrize("task", TASKS)
def test_dabs_suite_builds_the_task_from_the_data_root(dabs_root, task):
    datamodule = dabs_datamodule(task, str(dabs_root), batch_size=2)
    datamodule.setup()
    names = {spec.name for spec in datamodule.input_specs}
    for split in ("train", "test"):
        dataset = datamodule.dataset(split, "subclips")
        assert len(dataset) > 0, (task, split)
        item = dataset[0]
        assert set(item) == names | {"label", "clip_id"}
        for spec in datamodule.input_specs:
            assert tuple(item[spec.name].shape) == input_shape(spec), (task, spec.name)
    label = datamodule.dataset("test", "subclips")[0]["label"]
    if DABS_TASKS[task].metric == "auroc" or task in ("vqa", "mismatched_caption"):
        assert label.dtype == torch.float32 and label.shape == (datamodule.num_classes,)
    else:
        assert label.dtype == torch.int64 and 0 <= int(label) < datamodule.num_classes


def test_dabs_arguments_reach_the_datamodules(dabs_root):
    audio_mnist = dabs_datamodule("audio_mnist", str(dabs_root))
    assert audio_mnist.source.sample_rate == 48000 and audio_mnist.train_on_valid
    assert (audio_mnist.mean, audio_mnist.std) == (-90.293, 11.799)
    speaker = dabs_datamodule("librispeech_speaker", str(dabs_root))
    assert not speaker.train_on_valid and (speaker.mean, speaker.std) == (-22.924, 12.587)
    assert dabs_datamodule("pamap2", str(dabs_root)).test_subject == 105
    for task in ("vqa", "mismatched_caption"):  # DABS's bert ids from the root's tokenizer folder
        datamodule = dabs_datamodule(task, str(dabs_root))
        datamodule.setup()
        assert datamodule.canonical, task
