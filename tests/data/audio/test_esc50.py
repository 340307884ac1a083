"""Tests for ESC50DataModule on a tiny copy of the ESC-50 layout (tests/layouts/ESC50DataModule.py)."""

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from ssl_lightning.data import ESC50DataModule
from ssl_lightning.eval import LinearProbe, ProbeConfig
from ssl_lightning.eval.features import extract_features

layout = SimpleNamespace(**runpy.run_path(str(Path(__file__).parents[2] / "layouts" / "ESC50DataModule.py")))
"""The layout writer: `make(root)` and its helpers."""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The tiny layout, shared read-only: 50 classes x 2 clips, 20 clips per fold."""
    return Path(layout.make(tmp_path_factory.mktemp("esc50"))["root"])


@pytest.fixture
def fresh_root(tmp_path) -> Path:
    """A layout of its own, for tests that damage it."""
    return layout.write_esc50(tmp_path / "ESC-50-master")


def ready(root: Path, **kwargs) -> ESC50DataModule:
    datamodule = ESC50DataModule(str(root), **kwargs)
    datamodule.setup("fit")
    return datamodule


def _folds(datamodule: ESC50DataModule, split: str) -> set[int]:
    """The folds of a split, read back from the file names `{fold}-...wav`."""
    dataset = datamodule.dataset(split, "random_crop")
    return {int(dataset.paths[i].name.split("-")[0]) for i in range(len(dataset))}


def test_classes_come_from_the_csv(root):
    datamodule = ESC50DataModule(str(root))
    assert datamodule.num_classes == 50 and datamodule.label_type == "single"
    assert datamodule.classes[0] == "category_00" and datamodule.classes[49] == "category_49"


@pytest.mark.parametrize(("fold", "valid"), [(1, 2), (3, 4), (5, 1)])
def test_the_held_out_fold_is_test_and_the_next_is_valid(root, fold, valid):
    datamodule = ready(root, fold=fold)
    assert _folds(datamodule, "test") == {fold} and _folds(datamodule, "valid") == {valid}
    assert _folds(datamodule, "train") == {1, 2, 3, 4, 5} - {fold, valid}
    assert [len(datamodule.dataset(s, "random_crop")) for s in ("train", "valid", "test")] == [60, 20, 20]


def test_valid_fold_test_trains_on_four_folds(root):
    datamodule = ready(root, fold=2, valid_fold="test")
    assert _folds(datamodule, "train") == {1, 3, 4, 5}
    assert _folds(datamodule, "valid") == _folds(datamodule, "test") == {2}


def test_batches_follow_the_contract(root):
    datamodule = ready(root, batch_size=4)
    batch = next(iter(datamodule.train_dataloader()))
    # 0.25 s clips at 44.1 kHz, served at 16 kHz in 5 s crops: 4000 samples of audio, the rest padding
    assert batch["audio"].shape == (4, 80000) and batch["audio"].dtype == torch.float32
    assert batch["padding_mask"].sum(1).tolist() == [76000] * 4
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (4,)
    # the label is the target in the file name {fold}-{src}-{take}-{target}.wav
    paths = datamodule.dataset("train", "random_crop").paths
    targets = [int(paths[int(i)].stem.split("-")[-1]) for i in batch["clip_id"]]
    assert batch["label"].tolist() == targets
    test = torch.cat([b["clip_id"] for b in datamodule.test_dataloader()])
    assert test.tolist() == list(range(20))  # one 5 s sub-clip per (short) clip, in order


def test_probe_runs_on_the_datamodule(root):
    """The datamodule API that `ssl-lightning evaluate` uses: subclip loaders, label_type, num_classes."""
    datamodule = ready(root, batch_size=16, clip_seconds=0.25)

    def embed(batch: dict) -> torch.Tensor:
        return torch.fft.rfft(batch["audio"]).abs()  # [B, 2001]: the tone's frequency bin

    train, valid, test = (
        extract_features(embed, datamodule.subclip_dataloader(split), torch.device("cpu"), progress=False)
        for split in ("train", "valid", "test")
    )
    assert (len(train), len(valid), len(test)) == (60, 20, 20)
    probe = LinearProbe(ProbeConfig(max_steps=300, eval_every=100, warmup_steps=10)).fit(
        train, valid, datamodule.label_type, datamodule.num_classes, "accuracy"
    )
    # half of fold 1's classes have their other clip in train (the rest in valid): 0.5 at best, chance 0.02
    assert probe.evaluate(test, "accuracy") > 0.3


def test_missing_root_and_csv_say_what_to_do(tmp_path, fresh_root):
    with pytest.raises(FileNotFoundError, match="ESC-50 root not found.*ESC-50-master"):
        ready(tmp_path / "nowhere")
    (fresh_root / "meta" / "esc50.csv").unlink()
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv"):
        ready(fresh_root)


def test_missing_audio_is_counted_then_raised_or_skipped(fresh_root):
    removed = sorted((fresh_root / "audio").glob("1-*.wav"))[:3]
    for path in removed:
        path.unlink()
    with pytest.raises(FileNotFoundError, match=f"3 of 100 clips.*{removed[0].name}.*on_error='skip'"):
        ready(fresh_root)
    with pytest.warns(UserWarning, match="3 of 100 clips"):
        datamodule = ready(fresh_root, on_error="skip")
    assert len(datamodule.dataset("test", "random_crop")) == 17


def test_bad_csv_rows_name_the_line(fresh_root):
    csv_path = fresh_root / "meta" / "esc50.csv"
    lines = csv_path.read_text().splitlines()
    csv_path.write_text("\n".join([*lines, "9-1-A-0.wav,9,0,category_00,True,1,A"]))
    with pytest.raises(ValueError, match="line 102: fold 9"):
        ready(fresh_root)
    csv_path.write_text("\n".join([*lines, "1-1-A-0.wav,1,0,dog,True,1,A"]))
    with pytest.raises(ValueError, match="line 102: target 0 is 'dog' here but 'category_00'"):
        ready(fresh_root)
    csv_path.write_text("filename,target\n1-1-A-0.wav,0\n")
    with pytest.raises(ValueError, match="lacks column.*'fold'"):
        ready(fresh_root)


def test_a_csv_without_rows_or_folds_without_clips_say_so(fresh_root):
    csv_path = fresh_root / "meta" / "esc50.csv"
    lines = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text(lines[0])
    with pytest.raises(ValueError, match=f"{csv_path} has a header but no clip rows"):
        ready(fresh_root).train_dataloader()
    moved = [line.replace(f",{line[0]},", ",1,", 1) if line[0] in "345" else line for line in lines]
    csv_path.write_text("".join(moved))  # folds 3-5 moved to fold 1: train (folds 3-5 for fold 1) is empty
    with pytest.raises(
        ValueError, match=r"split\(s\) \['train'\] have no clip \(train: folds \[3, 4, 5\] of "
    ):
        ready(fresh_root, fold=1)
    with pytest.raises(ValueError, match=f"audio in {fresh_root / 'audio'}"):
        ready(fresh_root, fold=1)


def test_bad_arguments_raise_early(root):
    with pytest.raises(ValueError, match="fold must be one of 1..5"):
        ESC50DataModule(str(root), fold=0)
    with pytest.raises(ValueError, match="valid_fold"):
        ESC50DataModule(str(root), valid_fold="previous")
    with pytest.raises(ValueError, match="clip_seconds"):
        ESC50DataModule(str(root), clip_seconds=0)
