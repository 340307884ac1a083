"""Tests for inverse label-frequency weights and the seeded, DDP-split weighted sampler."""

import lightning as L
import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ssl_lightning.data import ManifestAudioDataset
from ssl_lightning.data.sampling import WeightedDistributedSampler, inverse_frequency_weights


def test_inverse_frequency_weights_worked_example():
    # items: 0 {a}, 1 {a, b}, 2 {c}, 3 {a, c}: n_a = 3, n_b = 1, n_c = 2
    item = torch.tensor([0, 1, 1, 2, 3, 3])
    label = torch.tensor([0, 0, 1, 2, 0, 2])
    weights = inverse_frequency_weights(item, label, num_items=4)
    expected = torch.tensor([1 / 3, 1 / 3 + 1, 1 / 2, 1 / 3 + 1 / 2], dtype=torch.float64)
    torch.testing.assert_close(weights, expected)


def test_single_label_weights_balance_the_classes():
    labels = torch.tensor([0, 0, 0, 1])  # class 0 three times as frequent as class 1
    weights = inverse_frequency_weights(torch.arange(4), labels, 4)
    per_class = torch.zeros(2, dtype=torch.float64).index_add_(0, labels, weights)
    torch.testing.assert_close(per_class, torch.ones(2, dtype=torch.float64))


def test_label_pairs_of_sub_clips_feed_the_weights(tmp_path):
    """A dataset's sparse labels, item by item: sub-clips repeat their clip's labels."""
    items = []
    for i, (seconds, labels) in enumerate([(1.0, ("a", "c")), (2.5, ("b",)), (0.4, ("a", "a"))]):
        soundfile.write(str(tmp_path / f"{i}.wav"), np.zeros(int(seconds * 16000)), 16000)
        items.append((tmp_path / f"{i}.wav", labels))
    dataset = ManifestAudioDataset(items, ("a", "b", "c"), "multi", num_samples=16000, mode="subclips")
    item, label = dataset.label_pairs()  # items: clip 0 | clip 1 x 3 sub-clips | clip 2 ("a" once)
    assert item.tolist() == [0, 0, 1, 2, 3, 4] and label.tolist() == [0, 2, 1, 1, 1, 0]
    weights = inverse_frequency_weights(item, label, len(dataset))
    torch.testing.assert_close(
        weights, torch.tensor([1 / 2 + 1, 1 / 3, 1 / 3, 1 / 3, 1 / 2], dtype=torch.float64)
    )


def test_weights_errors_name_the_problem():
    with pytest.raises(ValueError, match="2 of 3 items have no label \\(e.g. item 1\\)"):
        inverse_frequency_weights(torch.tensor([0]), torch.tensor([4]), 3)
    with pytest.raises(ValueError, match="same length"):
        inverse_frequency_weights(torch.tensor([0, 1]), torch.tensor([0]), 2)
    with pytest.raises(ValueError, match="\\[0, 2\\)"):
        inverse_frequency_weights(torch.tensor([0, 2]), torch.tensor([0, 0]), 2)


def test_draw_frequencies_follow_the_weights():
    weights = torch.arange(1, 11, dtype=torch.float64)
    sampler = WeightedDistributedSampler(weights, num_replicas=1, rank=0, seed=3)
    draws = []
    for epoch in range(2000):
        sampler.set_epoch(epoch)
        draws += list(sampler)
    assert len(draws) == 20000
    frequency = torch.bincount(torch.tensor(draws), minlength=10).double() / len(draws)
    p = weights / weights.sum()
    sigma = (p * (1 - p) / len(draws)).sqrt()
    assert ((frequency - p).abs() < 5 * sigma).all(), (frequency, p)


def test_zero_weight_is_never_drawn():
    sampler = WeightedDistributedSampler(torch.tensor([1.0, 0.0, 2.0, 1.0]), seed=7)
    seen = set()
    for epoch in range(50):
        sampler.set_epoch(epoch)
        seen |= set(sampler)
    assert seen == {0, 2, 3}


def test_draws_are_seeded_and_change_with_the_epoch():
    weights = torch.ones(20)
    sampler = WeightedDistributedSampler(weights, seed=7)
    first = list(sampler)
    assert first == list(WeightedDistributedSampler(weights, seed=7))
    assert first != list(WeightedDistributedSampler(weights, seed=8))
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_ranks_take_disjoint_shares_that_make_up_the_draw():
    weights = torch.rand(10, generator=torch.Generator().manual_seed(0)).double()
    samplers = [WeightedDistributedSampler(weights, num_replicas=3, rank=r, seed=5) for r in range(3)]
    for sampler in samplers:
        sampler.set_epoch(4)
    draw = samplers[0].draw()
    assert draw.shape == (12,)  # 10 rounded up to a multiple of 3
    assert all(torch.equal(s.draw(), draw) for s in samplers)  # every rank sees the same draw
    shares = [list(s) for s in samplers]
    assert [len(share) for share in shares] == [len(s) for s in samplers] == [4, 4, 4]
    interleaved = [shares[r][k] for k in range(4) for r in range(3)]  # positions r, r + 3, ... per rank
    assert interleaved == draw.tolist()


def test_sampler_is_a_distributed_sampler_and_checks_its_weights():
    assert isinstance(WeightedDistributedSampler(torch.ones(3)), DistributedSampler)
    for bad in (torch.ones(2, 2), torch.tensor([1.0, -1.0]), torch.zeros(3), torch.tensor([float("nan")])):
        with pytest.raises(ValueError, match="weights"):
            WeightedDistributedSampler(bad)


class _RecordIndices(L.LightningModule):
    """Records the dataset indices of its training batches (rank by rank, in a shared list)."""

    def __init__(self, out: str) -> None:
        super().__init__()
        self.out, self.layer = out, torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        with open(f"{self.out}.{self.global_rank}", "a") as handle:
            handle.write("".join(f"{self.current_epoch} {int(i)}\n" for i in batch))
        return self.layer(batch[:, None].float()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)

    def train_dataloader(self):
        sampler = WeightedDistributedSampler(torch.ones(12), num_replicas=2, rank=self.global_rank, seed=1)
        return DataLoader(torch.arange(12), batch_size=3, sampler=sampler)


@pytest.mark.distributed
def test_lightning_ddp_keeps_the_sampler(tmp_path):
    """Under 2-process DDP (use_distributed_sampler left on) each rank trains on its own share."""
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_fork",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(_RecordIndices(str(tmp_path / "indices")))
    for epoch in range(2):
        shares = []
        for rank in range(2):
            lines = (tmp_path / f"indices.{rank}").read_text().split("\n")
            shares.append([int(line.split()[1]) for line in lines if line and int(line.split()[0]) == epoch])
        sampler = WeightedDistributedSampler(torch.ones(12), num_replicas=2, rank=0, seed=1)
        sampler.set_epoch(epoch)
        draw = sampler.draw().tolist()
        assert shares == [draw[0::2], draw[1::2]]  # not re-split by a DistributedSampler wrapper
