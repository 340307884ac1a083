import math

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from ssl_lightning.callbacks import FiniteLossGuard, NonFiniteLossError
from ssl_lightning.methods import SupervisedClassifier


class ExplodingClassifier(SupervisedClassifier):
    """Loss becomes NaN from global step 3 on."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * math.nan if self.global_step >= 3 else loss


def test_nan_loss_stops_training_and_keeps_last_good_checkpoint(tmp_path, tiny_encoder_cls, clip_loader):
    model = ExplodingClassifier(tiny_encoder_cls(4), num_classes=3)
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True, every_n_train_steps=1, save_top_k=0)
    trainer = L.Trainer(
        max_steps=10,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        callbacks=[FiniteLossGuard(), ckpt],
        default_root_dir=tmp_path,
    )
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at global step 3.*last\.ckpt"):
        trainer.fit(model, train_dataloaders=clip_loader(64))
    saved = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values() if v.is_floating_point())
