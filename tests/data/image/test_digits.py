import pytest
import torch

from ssl_lightning.data.image.digits import DigitsDataModule


@pytest.fixture(scope="module")
def digits():
    datamodule = DigitsDataModule(batch_size=32, image_size=16, seed=0)
    datamodule.setup()
    return datamodule


def test_splits_are_disjoint_complete_stratified_and_deterministic(digits):
    splits = digits.split_indices
    assert {name: len(ids) for name, ids in splits.items()} == {"train": 1257, "valid": 270, "test": 270}
    all_ids = torch.cat(list(splits.values()))
    assert torch.equal(all_ids.sort().values, torch.arange(1797))
    labels = digits._labels
    overall = torch.bincount(labels, minlength=10).float() / 1797
    for ids in splits.values():
        share = torch.bincount(labels[ids], minlength=10).float() / len(ids)
        assert (share - overall).abs().max() < 0.01
    again = DigitsDataModule(image_size=16, seed=0)
    again.setup()
    other = DigitsDataModule(image_size=16, seed=1)
    other.setup()
    assert all(torch.equal(again.split_indices[n], splits[n]) for n in splits)
    assert not torch.equal(other.split_indices["test"], splits["test"])


def test_batches_follow_the_contract(digits):
    batch = next(iter(digits.train_dataloader()))
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (32, 3, 16, 16) and batch["image"].dtype == torch.float32
    assert batch["label"].dtype == torch.int64
    assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
    assert torch.equal(batch["image"][:, 0], batch["image"][:, 2])
    probe = next(iter(digits.subclip_dataloader("valid")))
    assert torch.equal(probe["clip_id"], digits.split_indices["valid"][:32])
    assert digits.num_classes == 10 and digits.label_type == "single"


def test_image_matches_the_upsampled_digit():
    from sklearn.datasets import load_digits

    datamodule = DigitsDataModule(image_size=8)
    datamodule.setup()
    index = int(datamodule.split_indices["test"][0])
    expected = torch.from_numpy(load_digits().images[index]).float() / 16
    item = datamodule.dataset("test", with_clip_id=True)[0]
    assert int(item["clip_id"]) == index
    torch.testing.assert_close(item["image"][1], expected)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="image_size"):
        DigitsDataModule(image_size=0)
    with pytest.raises(ValueError, match="split_fractions"):
        DigitsDataModule(split_fractions=(0.5, 0.5, 0.5))
    with pytest.raises(RuntimeError, match="setup"):
        DigitsDataModule().train_dataloader()
    datamodule = DigitsDataModule(image_size=8)
    datamodule.setup()
    with pytest.raises(ValueError, match="no split 'pool'"):
        datamodule.subclip_dataloader("pool")
