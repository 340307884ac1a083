"""Hugging Face `datasets` as a source of labelled audio (`ssl_lightning/data/audio/hub.py`), through the
shared datamodule base; ESC-50's hub path against its folder layout."""

import runpy
from pathlib import Path

import numpy as np
import pytest
import torch

from ssl_lightning.audio import AudioDecodeError
from ssl_lightning.data import ESC50DataModule
from ssl_lightning.data.audio.datamodule import AudioClassificationDataModule
from ssl_lightning.data.audio.hub import HubAudioDataset, HubSource, HubSplit, decode_cell, load_hub

LAYOUTS = Path(__file__).parents[2] / "layouts"
hub = runpy.run_path(str(LAYOUTS / "hub.py"))
esc50 = runpy.run_path(str(LAYOUTS / "ESC50DataModule.py"))


def test_esc50_from_a_hub_table_equals_the_folder_layout(tmp_path):
    import csv

    import soundfile

    root = esc50["write_esc50"](tmp_path / "ESC-50-master", clips_per_class=1)
    with open(root / "meta" / "esc50.csv") as handle:
        rows = list(csv.DictReader(handle))
    waveforms, rate = [], None
    for row in rows:
        samples, rate = soundfile.read(str(root / "audio" / row["filename"]), dtype="float32")
        waveforms.append(samples)
    columns = {key: [row[key] for row in rows] for key in ("filename", "category")}
    columns |= {key: [int(row[key]) for row in rows] for key in ("fold", "target")}
    table = hub["audio_table"](columns, waveforms, rate)
    folder, copy = ESC50DataModule(str(root), fold=2), ESC50DataModule(hub={"train": table}, fold=2)
    for dm in (folder, copy):
        dm.setup("fit")
    assert copy.classes == folder.classes and copy.canonical
    for split in ("train", "valid", "test"):
        a, b = (next(iter(dm.subclip_dataloader(split, batch_size=100))) for dm in (folder, copy))
        assert torch.equal(a["label"], b["label"])
        assert torch.allclose(a["audio"], b["audio"], atol=1e-4)  # both 16-bit wavs of the same samples


def test_hub_dataset_resamples_cuts_sub_clips_and_names_a_bad_row():
    table = hub["audio_table"](
        {"name": ["a", "b"]}, [hub["tone"](440, 2.5, 8000), hub["tone"](220, 0.5, 8000)], 8000
    )
    split = HubSplit(table, [0, 1], [("x",), ("y",)], "audio", "demo[train]")
    dataset = HubAudioDataset(split, ("x", "y"), "single", 16000, num_samples=16000, mode="subclips")
    assert len(dataset) == 3 + 1  # 2.5 s in 1 s sub-clips (the last one padded), then 0.5 s
    assert dataset[0]["audio"].shape == (16000,) and dataset[2]["padding_mask"].sum() == 8000
    assert [int(dataset[i]["label"]) for i in range(4)] == [0, 0, 0, 1]
    with pytest.raises(AudioDecodeError, match="demo row 3: cannot decode"):
        decode_cell({"bytes": b"not audio", "path": None}, "demo row 3")
    with pytest.raises(AudioDecodeError, match="neither bytes nor a path"):
        decode_cell({"bytes": None, "path": None}, "demo row 4")


def test_load_hub_reads_save_to_disk_folders_and_names_a_missing_audio_column(tmp_path):
    import datasets

    table = hub["audio_table"]({"label": [1]}, [np.zeros(800)], 8000)
    datasets.DatasetDict({"train": table}).save_to_disk(str(tmp_path / "copy"))
    tables, column = load_hub(str(tmp_path / "copy"))
    assert column == "audio" and tables["train"].features["audio"].decode is False
    waveform, rate = decode_cell(tables["train"][0]["audio"], "row 0")
    assert rate == 8000 and waveform.shape == (800,)
    with pytest.raises(ValueError, match="no audio column 'sound'.*\\['label', 'audio'\\]"):
        load_hub(HubSource(str(tmp_path / "copy"), audio_column="sound"))


def test_a_datamodule_without_a_hub_path_refuses_hub_before_any_download():
    class NoHub(AudioClassificationDataModule):
        classes, label_type = ("a",), "single"

    dm = NoHub(4, 0, 16000, 1.0, hub="some/hub-id-that-is-never-fetched")
    with pytest.raises(NotImplementedError, match="NoHub has no Hugging Face source; pass root="):
        dm.setup("fit")
