"""Tests for VoxForgeDataModule on a tiny copy of the archives TFDS reads
(tests/layouts/VoxForgeDataModule.py)."""

import io
import math
import runpy
import shutil
import tarfile
from pathlib import Path
from types import SimpleNamespace

import datasets
import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.data.audio.voxforge import VoxForgeDataModule

LAYOUTS = Path(__file__).parents[2] / "layouts"
layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "VoxForgeDataModule.py")))
hub = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "hub.py")))
SPLITS = ("train", "valid", "test")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout with its archives extracted, shared read-only."""
    root = Path(layout.make(tmp_path_factory.mktemp("voxforge"))["root"])
    VoxForgeDataModule(str(root)).prepare_data()
    return root


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, not extracted, for tests that extract or damage it."""
    return layout.write_voxforge(tmp_path / "voxforge")


def ready(root: Path, **kwargs) -> VoxForgeDataModule:
    datamodule = VoxForgeDataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def clip_paths(datamodule: VoxForgeDataModule, split: str) -> list[Path]:
    dataset = datamodule.dataset(split, "random_crop")
    return [dataset.paths[i] for i in range(len(dataset))]


def speakers(paths: list[Path]) -> set[str]:
    """Speakers of wavs `<submission>/wav/<file>.wav`: the submission name up to the first '-'."""
    return {path.parts[-3].split("-")[0] for path in paths}


def test_prepare_data_extracts_each_archive_of_the_release_once(fresh_root, monkeypatch):
    folder = fresh_root / "de" / "Trunk" / "Audio" / "Main" / "16kHz_16bit"
    with pytest.raises(FileNotFoundError, match=r"20 VoxForge archive\(s\) .* not extracted.*prepare_data"):
        ready(fresh_root)
    VoxForgeDataModule(str(fresh_root)).prepare_data()
    assert sorted(path.name for path in (folder / "Aaron-20070101-abc").rglob("*")) == [
        *("PROMPTS", "README", "a0001.wav", "a0002.wav", "etc", "wav")
    ]
    late_language, late_name = layout.LATE
    assert not (fresh_root / late_language / layout.ARCHIVE_FOLDER / late_name).exists()  # dated 2020
    assert not list(fresh_root.rglob(".*.partial"))
    monkeypatch.setattr(tarfile, "open", None)  # a second run opens no archive
    VoxForgeDataModule(str(fresh_root)).prepare_data()


def test_the_split_is_tfds_rule_over_the_speakers(root):
    """TFDS sorts the speakers, shuffles them with RandomState(0) and cuts at int(0.7 * 20) = 14 and
    int((0.7 + 0.1) * 20) = int(15.999999999999998) = 15: 14 / 1 / 5 speakers, not 14 / 2 / 4."""
    names = [name for _, name in layout.SUBMISSIONS]
    order = sorted({name.split("-")[0] for name in names})
    assert len(order) == 20  # anonymous twice, the 2020 submission left out
    np.random.RandomState(0).shuffle(order)
    expected = {"train": set(order[:14]), "valid": set(order[14:15]), "test": set(order[15:])}
    datamodule = ready(root)
    flac_only = layout.FLAC_ONLY.split("-")[0]
    for split in SPLITS:
        assert speakers(clip_paths(datamodule, split)) == expected[split] - {flac_only}
    assert datamodule.canonical and "RandomState(0)" in datamodule.split_note


def test_the_split_seed_moves_speakers_and_the_training_seed_does_not(root):
    split = [clip_paths(ready(root), split) for split in SPLITS]
    moved = ready(root, split_seed=1)
    assert [clip_paths(ready(root, seed=5), split) for split in SPLITS] == split
    assert ready(root, seed=5).canonical and not moved.canonical and "RandomState(1)" in moved.split_note
    order = sorted({name.split("-")[0] for _, name in layout.SUBMISSIONS})
    np.random.RandomState(1).shuffle(order)
    assert speakers(clip_paths(moved, "valid")) == set(order[14:15]) - {layout.FLAC_ONLY.split("-")[0]}
    assert [clip_paths(moved, split) for split in SPLITS] != split


def test_clips_are_every_wav_labelled_by_language(root):
    datamodule = ready(root)
    paths = [path for split in SPLITS for path in clip_paths(datamodule, split)]
    wavs = 2 * (len(layout.SUBMISSIONS) - 1)  # two per submission, none in the flac-only one
    assert len(paths) == len(set(paths)) == wavs and all(path.suffix == ".wav" for path in paths)
    assert not any(layout.LATE[1] in str(path) for path in paths)
    assert datamodule.classes == ("de", "en", "es", "fr", "it", "ru") and datamodule.label_type == "single"
    batch = next(iter(datamodule.subclip_dataloader("valid", batch_size=64)))
    valid = clip_paths(datamodule, "valid")
    languages = [valid[int(i)].relative_to(root).parts[0] for i in batch["clip_id"]]
    assert batch["label"].tolist() == [datamodule.classes.index(language) for language in languages]


def test_training_crops_and_evaluation_subclips_last_three_seconds(root):
    datamodule = ready(root, batch_size=4)
    assert next(iter(datamodule.train_dataloader()))["audio"].shape == (4, 48000)
    clip_ids = torch.cat([batch["clip_id"] for batch in datamodule.subclip_dataloader("train")])
    counts = [math.ceil(soundfile.info(str(path)).frames / 48000) for path in clip_paths(datamodule, "train")]
    assert sorted(set(counts)) == [1, 2, 3]  # 0.5 / 3 s, 4 s and 7 s clips are in the train split
    assert clip_ids.tolist() == [clip for clip, count in enumerate(counts) for _ in range(count)]


def test_a_written_split_file_reads_back_the_same_split(root, tmp_path):
    split_file = tmp_path / "voxforge_split.tsv"
    datamodule = ready(root)
    datamodule.write_split_file(str(split_file))
    lines = split_file.read_text().splitlines()
    assert lines == sorted(lines) and len(lines) == 2 * (len(layout.SUBMISSIONS) - 1)
    assert lines[0].startswith("test\tde/Trunk/Audio/Main/16kHz_16bit/")
    again = ready(root, split_file=str(split_file))
    assert not again.canonical and str(split_file) in again.split_note
    for split in SPLITS:
        assert clip_paths(again, split) == clip_paths(datamodule, split)


def test_bad_split_files_name_the_line_or_item(root, tmp_path):
    split_file = tmp_path / "split.tsv"
    split_file.write_text(
        "train\tde/Trunk/Audio/Main/16kHz_16bit/Aaron-20070101-abc/wav/a0001.wav\ndev\tx.wav\n"
    )
    with pytest.raises(ValueError, match=r"split.tsv line 2: expected '<split>\\t<item id>'.*'dev\\tx.wav'"):
        ready(root, split_file=str(split_file))
    split_file.write_text("".join(f"{s}\tde/Trunk/Audio/Main/16kHz_16bit/nobody/wav/a.wav\n" for s in SPLITS))
    with pytest.raises(ValueError, match=r"split.tsv line 1: 'de/Trunk/.*/nobody/wav/a.wav' is not an item"):
        ready(root, split_file=str(split_file))
    with pytest.raises(FileNotFoundError, match="split file not found"):
        ready(root, split_file=str(tmp_path / "none.tsv"))


def test_unsafe_or_broken_archives_are_refused(fresh_root):
    folder = fresh_root / "it" / layout.ARCHIVE_FOLDER
    evil = folder / "mallory-20100101-abc.tgz"
    layout.write_archive(evil, {"mallory-20100101-abc/wav/a.wav": b"x", "../../escaped.wav": b"x"})
    with pytest.raises(ValueError, match=f"cannot extract VoxForge archive {evil}.*download it again"):
        VoxForgeDataModule(str(fresh_root)).prepare_data()
    assert not list(fresh_root.rglob("escaped.wav")) and not list(fresh_root.rglob(".*.partial"))
    assert not (folder / "mallory-20100101-abc").exists()
    evil.write_bytes(b"not a tar archive")
    with pytest.raises(ValueError, match="cannot extract VoxForge archive .*mallory"):
        VoxForgeDataModule(str(fresh_root)).prepare_data()


def test_wget_layout_and_unknown_languages(tmp_path):
    root = layout.write_voxforge(tmp_path / "voxforge", prefix="www.repository.voxforge1.org/downloads")
    datamodule = VoxForgeDataModule(str(root))
    datamodule.prepare_data()
    datamodule.setup()
    assert sum(len(clip_paths(datamodule, split)) for split in SPLITS) == 2 * (len(layout.SUBMISSIONS) - 1)
    layout.write_archive(root / "pt" / layout.ARCHIVE_FOLDER / "ana-20100101-abc.tgz", {"a/wav/a.wav": b""})
    with pytest.raises(ValueError, match=r"pt/Trunk/Audio/Main/16kHz_16bit.*one of \['de', 'en'"):
        VoxForgeDataModule(str(root)).prepare_data()


def test_missing_root_and_root_or_hub(tmp_path):
    with pytest.raises(FileNotFoundError, match="VoxForge root not found.*voxforge_urls.txt"):
        VoxForgeDataModule(str(tmp_path / "nowhere")).prepare_data()
    with pytest.raises(FileNotFoundError, match="no <lang>/Trunk/Audio/Main/16kHz_16bit/ folder"):
        ready(tmp_path)
    with pytest.raises(ValueError, match="exactly one of root= .* and hub="):
        VoxForgeDataModule()
    assert VoxForgeDataModule.HUB is None and not VoxForgeDataModule(str(tmp_path), split_seed=1).canonical


def hub_copy(root: Path) -> tuple[VoxForgeDataModule, dict]:
    """A root without the flac-only submission (a speaker no wav row can carry), its datamodule, and its
    wavs as in-memory hub tables per split (language, speaker, audio), in the folder path's clip order."""
    for archive in root.rglob(f"{layout.FLAC_ONLY}*"):
        shutil.rmtree(archive) if archive.is_dir() else archive.unlink()
    folder = ready(root)
    tables = {}
    for split in SPLITS:
        paths = clip_paths(folder, split)
        columns = {
            "language": [path.parts[-8] for path in paths],
            "speaker": [path.parts[-3].split("-")[0] for path in paths],
        }
        tables[split] = hub.audio_table(columns, [soundfile.read(str(path))[0] for path in paths], 16000)
    return folder, tables


def labels_of(datamodule: VoxForgeDataModule) -> dict:
    return {split: datamodule.dataset(split, "subclips").label_pairs() for split in SPLITS}


def test_a_hub_copy_gives_the_folder_split_and_labels(tmp_path):
    root = layout.write_voxforge(tmp_path / "voxforge")
    VoxForgeDataModule(str(root)).prepare_data()
    folder, tables = hub_copy(root)
    merged = datasets.concatenate_datasets([tables[split] for split in SPLITS])
    speaker_of = list(merged["speaker"])
    order = sorted(range(len(merged)), key=speaker_of.__getitem__)  # not the folder's order
    for given in ({"train": merged.select(order)}, tables):
        copy = VoxForgeDataModule(hub=given, batch_size=4)
        copy.setup("fit")
        assert copy.classes == folder.classes
        sizes = [len(folder.dataset(split, "random_crop")) for split in SPLITS]
        assert [len(copy.dataset(split, "random_crop")) for split in SPLITS] == sizes and sum(
            sizes
        ) == 40  # 20 submissions with 2 wavs
        for split, (items, classes) in labels_of(copy).items():
            expected_items, expected_classes = labels_of(folder)[split]
            assert sorted(classes.tolist()) == sorted(expected_classes.tolist())
            if given is tables:
                assert torch.equal(items, expected_items) and torch.equal(classes, expected_classes)
        assert copy.canonical == (given is not tables)
    assert "splits of a hub copy" in copy.split_note
    moved = VoxForgeDataModule(hub={"train": merged}, split_seed=1)
    moved.setup()
    assert not moved.canonical and "RandomState(1), 70/10/20 of a hub copy" in moved.split_note
    expected = ready(root, split_seed=1)
    for split in SPLITS:
        assert sorted(moved.dataset(split, "random_crop").label_pairs()[1].tolist()) == sorted(
            expected.dataset(split, "random_crop").label_pairs()[1].tolist()
        )


def test_hub_copy_errors_name_the_column_or_value(root, tmp_path):
    table = hub.audio_table({"language": ["de", "xx"]}, [hub.tone(300, 0.5, 16000)] * 2, 16000)
    with pytest.raises(ValueError, match=r"language\(s\) \['xx'\] are none of TFDS voxforge's"):
        VoxForgeDataModule(hub={"train": table}).setup()
    with pytest.raises(ValueError, match=r"hub copy \(one table\) has no column 'speaker'"):
        VoxForgeDataModule(hub={"train": table.select([0])}).setup()
    with pytest.raises(ValueError, match="split_file= .* cannot be used with hub="):
        VoxForgeDataModule(hub={"train": table}, split_file=str(tmp_path / "split.txt"))


def test_an_archive_with_several_top_folders_is_kept_whole(fresh_root):
    folder = fresh_root / "ru" / layout.ARCHIVE_FOLDER
    wav = io.BytesIO()
    soundfile.write(wav, np.zeros(800), 16000, format="WAV")
    layout.write_archive(folder / "yuri-20100101-abc.tgz", {"wav/a.wav": wav.getvalue(), "etc/README": b""})
    VoxForgeDataModule(str(fresh_root)).prepare_data()
    assert (folder / "yuri-20100101-abc" / "wav" / "a.wav").is_file()
