"""Tests for HaresMiniDataModule: the batch contract, sub-clip grouping, the pool and setup errors."""

import pytest
import torch

from ssl_lightning.data import HaresMiniDataModule
from ssl_lightning.data.embedded.hares_mini import get_task

SMALL = {"train": 6, "valid": 3, "test": 3}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hares_mini"))


def ready(task: str, root: str, **kwargs) -> HaresMiniDataModule:
    datamodule = HaresMiniDataModule(task, root=root, split_sizes=SMALL, **kwargs)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


def test_train_batches_follow_the_contract(root):
    datamodule = ready("env_events", root, batch_size=4)
    batches = list(datamodule.train_dataloader())
    assert [batch["audio"].shape[0] for batch in batches] == [4, 2]  # drop_last=False
    batch = batches[0]
    assert batch["audio"].shape == (4, 16000) and batch["audio"].dtype == torch.float32  # eval_seconds crop
    assert batch["padding_mask"].shape == (4, 16000) and batch["padding_mask"].dtype == torch.bool
    assert not batch["padding_mask"].any()
    assert batch["label"].shape == (4,) and batch["label"].dtype == torch.int64
    assert batch["clip_id"].dtype == torch.int64
    # labels are the round-robin classes of the clips
    torch.testing.assert_close(batch["label"], batch["clip_id"] % 10)


def test_subclips_group_by_clip_and_share_labels(root):
    datamodule = ready("env_events", root, batch_size=4)
    batches = list(datamodule.val_dataloader())
    clip_id = torch.cat([batch["clip_id"] for batch in batches])
    label = torch.cat([batch["label"] for batch in batches])
    # 3 clips of 2 s cut into 1 s sub-clips, in order
    assert clip_id.tolist() == [0, 0, 1, 1, 2, 2]
    assert label.tolist() == [0, 0, 1, 1, 2, 2]
    train = torch.cat([batch["clip_id"] for batch in datamodule.subclip_dataloader("train", batch_size=5)])
    assert train.tolist() == [i for i in range(6) for _ in range(2)]


def test_multi_label_batches(root):
    datamodule = ready("env_scenes", root, batch_size=8)
    assert (datamodule.label_type, datamodule.num_classes) == ("multi", 10)
    batch = next(iter(datamodule.test_dataloader()))
    assert batch["label"].shape == (6, 10) and batch["label"].dtype == torch.float32
    assert set(batch["label"].unique().tolist()) <= {0.0, 1.0}
    assert ((batch["label"].sum(1) >= 1) & (batch["label"].sum(1) <= 3)).all()
    assert torch.equal(batch["label"][0], batch["label"][1])  # two sub-clips of clip 0


def test_properties_and_hyperparameters(root):
    datamodule = HaresMiniDataModule("music_instrument", root=root, batch_size=7, split_sizes=SMALL)
    assert datamodule.task_spec is get_task("music_instrument")
    assert datamodule.num_classes == 8 and datamodule.label_type == "single"
    assert datamodule.hparams.batch_size == 7 and datamodule.hparams.task == "music_instrument"
    assert datamodule.eval_num_samples == datamodule.train_num_samples == 32000


def test_train_seconds_sample_rate_and_seeded_shuffle(root):
    datamodule = ready("env_events", root, batch_size=6, train_seconds=0.5, sample_rate=8000, seed=3)
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["audio"].shape == (6, 4000)
    again = ready("env_events", root, batch_size=6, seed=3)
    other = ready("env_events", root, batch_size=6, seed=4)
    orders = [next(iter(dm.train_dataloader()))["clip_id"].tolist() for dm in (datamodule, again, other)]
    assert orders[0] == orders[1] != orders[2]


def test_pool_serves_unlabeled_crops(root):
    datamodule = ready("pool", root, batch_size=8)
    assert datamodule.task_spec is None and datamodule.num_classes is None and datamodule.label_type is None
    batch = next(iter(datamodule.train_dataloader()))
    assert "label" not in batch and batch["audio"].shape == (6, 32000)
    assert next(iter(datamodule.val_dataloader()))["audio"].shape == (3, 32000)
    with pytest.raises(ValueError, match="no split 'test'"):
        datamodule.test_dataloader()


def test_setup_without_data_says_to_prepare(tmp_path):
    datamodule = HaresMiniDataModule("env_events", root=str(tmp_path), split_sizes=SMALL)
    with pytest.raises(FileNotFoundError, match="prepare_data"):
        datamodule.setup("fit")
    with pytest.raises(RuntimeError, match="setup"):
        datamodule.train_dataloader()


def test_bad_arguments_raise_early():
    with pytest.raises(ValueError, match="env_event.*env_events"):
        HaresMiniDataModule("env_event")
    with pytest.raises(ValueError, match="batch_size"):
        HaresMiniDataModule(batch_size=0)
    with pytest.raises(ValueError, match="on_error"):
        HaresMiniDataModule(on_error="ignore")
    with pytest.raises(ValueError, match="train_seconds"):
        HaresMiniDataModule(train_seconds=-1.0)


def test_corrupt_clip_raise_or_skip(root, tmp_path):
    datamodule = ready("music_pitch", root)
    (datamodule.data_dir / "valid" / "00001.wav").write_bytes(b"garbage")
    try:
        with pytest.raises(Exception, match="valid/00001.wav"):
            list(datamodule.val_dataloader())
        skipping = ready("music_pitch", root, on_error="skip")
        with pytest.warns(UserWarning, match="skipped 1 of 3"):
            loader = skipping.val_dataloader()
        assert torch.cat([batch["clip_id"] for batch in loader]).tolist() == [0, 0, 2, 2]
    finally:
        (datamodule.data_dir / ".complete").unlink()  # let later builds regenerate the damaged task
