"""Metrics under DDP: 2 CPU processes (gloo) report the same validation metric as 1 process."""

import lightning as L
import pytest
from torch.utils.data import DataLoader

from ssl_lightning.methods import SupervisedClassifier


def _validate(model, loader, devices: int) -> dict[str, float]:
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp_fork" if devices > 1 else "auto",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return trainer.validate(model, dataloaders=loader, verbose=False)[0]


@pytest.mark.distributed
@pytest.mark.parametrize("label_type", ["single", "multi"])
def test_validation_metric_is_synced_across_two_processes(tiny_encoder_cls, clip_loader, label_type):
    L.seed_everything(0)
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, label_type=label_type)
    loader = clip_loader(48, batch_size=8, shuffle=False)
    if label_type == "multi":
        multi_hot = [
            {**b, "label": (b["label"][:, None] == b["label"].new_tensor([0, 1, 2])).float()} for b in loader
        ]
        loader = DataLoader(multi_hot, batch_size=None)
    single = _validate(model, loader, devices=1)
    double = _validate(model, loader, devices=2)
    assert double["val/metric"] == pytest.approx(single["val/metric"], abs=1e-6)
    assert double["val/loss"] == pytest.approx(single["val/loss"], abs=1e-5)
    assert 0.0 < single["val/metric"] < 1.0  # a random head: the metric is informative, not saturated
