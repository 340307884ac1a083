"""BYOL under DDP (2 gloo CPU processes): the EMA targets of both ranks stay identical and equal the
target of one process trained on the same global batches.

BatchNorm normalises with the local batch, so exact equality with one process needs
`Trainer(sync_batchnorm=True)`. PyTorch's SyncBatchNorm runs on GPUs only, so on CPU this test
replaces the heads' BatchNorm by identities for the comparison with one process; with BatchNorm
kept (and no sync) the ranks' target parameters still stay identical to each other.
"""

from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from ssl_lightning.methods import BYOL
from ssl_lightning.nn.optim import OptimizerConfig

pytestmark = pytest.mark.distributed

GLOBAL_BATCH, STEPS = 8, 2


class SaveTarget(L.Callback):
    """Each rank writes its online and target parameters and target buffers at the end of training."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer: L.Trainer, pl_module: BYOL) -> None:
        state = {
            "target": {k: v.clone() for k, v in pl_module.target.module.state_dict().items()},
            "online": {k: v.clone() for k, v in pl_module.online_network().state_dict().items()},
        }
        torch.save(state, self.out_dir / f"rank{trainer.global_rank}.pt")


def _model(encoder_cls: type[nn.Module], views_cls: type[nn.Module], batch_norm: bool) -> BYOL:
    torch.manual_seed(0)
    model = BYOL(
        encoder_cls(8),
        views_cls(),
        4,
        16,
        predictor_hidden_dim=16,
        base_tau=0.9,
        optim=OptimizerConfig(name="sgd", lr=0.5, weight_decay=0.0),
    )
    if not batch_norm:
        for head in (model.projector, model.predictor, model.target.module["projector"]):
            for index, layer in enumerate(head):
                if isinstance(layer, nn.BatchNorm1d):
                    head[index] = nn.Identity()
    return model


def _fit(trainer_factory, rank_interleaved_cls, model: BYOL, devices: int, out_dir: Path) -> list[dict]:
    """Train STEPS steps of GLOBAL_BATCH clips (split across `devices` ranks); each rank's state."""
    out_dir.mkdir()
    waves = torch.randn(GLOBAL_BATCH * STEPS, 640, generator=torch.Generator().manual_seed(3))
    data = DataLoader(
        [{"audio": w} for w in waves],
        batch_size=GLOBAL_BATCH // devices,
        sampler=rank_interleaved_cls(len(waves)),
    )
    trainer = trainer_factory(
        devices=devices,
        strategy="ddp_fork" if devices > 1 else "auto",
        max_steps=STEPS,
        callbacks=[SaveTarget(out_dir)],
        use_distributed_sampler=False,
    )
    trainer.fit(model, train_dataloaders=data)
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(devices)]


def test_targets_are_identical_across_ranks_and_equal_one_process(
    tmp_path, tiny_encoder_cls, alternating_views_cls, quiet_trainer, rank_interleaved_cls
):
    def build() -> BYOL:
        return _model(tiny_encoder_cls, alternating_views_cls, batch_norm=False)

    initial = build().target.module.state_dict()
    single = _fit(quiet_trainer, rank_interleaved_cls, build(), 1, tmp_path / "single")[0]
    ranks = _fit(quiet_trainer, rank_interleaved_cls, build(), 2, tmp_path / "ddp")
    for name, value in single["target"].items():
        assert torch.equal(ranks[0]["target"][name], ranks[1]["target"][name]), name
        torch.testing.assert_close(ranks[0]["target"][name], value, rtol=0, atol=1e-6, msg=name)
        assert not torch.equal(value, initial[name]), name  # the target did move
        assert not torch.equal(value, single["online"][name]), name  # ... but lags the online network


def test_with_local_batch_norm_the_ranks_target_parameters_still_agree(
    tmp_path, tiny_encoder_cls, alternating_views_cls, quiet_trainer, rank_interleaved_cls
):
    model = _model(tiny_encoder_cls, alternating_views_cls, batch_norm=True)
    parameters = [name for name, _ in model.target.module.named_parameters()]
    ranks = _fit(quiet_trainer, rank_interleaved_cls, model, 2, tmp_path / "ddp_bn")
    for name in parameters:
        assert torch.equal(ranks[0]["target"][name], ranks[1]["target"][name]), name
    # the running statistics follow each rank's own batches
    running = "projector.1.running_mean"
    assert not torch.equal(ranks[0]["target"][running], ranks[1]["target"][running])
