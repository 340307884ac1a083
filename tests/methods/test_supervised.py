import lightning as L
import pytest
import torch

from ssl_lightning.methods import FrozenEncoder, SupervisedClassifier, load_method
from ssl_lightning.nn.optim import OptimizerConfig


def _trainer(tmp_path, steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **kwargs,
    )


def _accuracy(model, loader) -> float:
    model.eval()
    with torch.no_grad():
        hits = [(model(b).argmax(-1) == b["label"]).float() for b in loader]
    return torch.cat(hits).mean().item()


def test_supervised_classifier_learns_and_restores_from_checkpoint_alone(
    tmp_path, tiny_encoder_cls, clip_loader
):
    L.seed_everything(0)
    model = SupervisedClassifier(
        tiny_encoder_cls(8), num_classes=3, optim=OptimizerConfig(lr=0.05, weight_decay=0)
    )
    train, test = clip_loader(96), clip_loader(30, seed=1, shuffle=False)
    before = _accuracy(model, test)
    trainer = _trainer(tmp_path, 150)
    trainer.fit(model, train_dataloaders=train)
    after = _accuracy(model, test)
    assert after >= 0.9 > before
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = load_method(path)
    assert type(restored) is SupervisedClassifier
    batch = next(iter(test))
    torch.testing.assert_close(restored.eval().predict_scores(batch), model.eval().predict_scores(batch))


def test_multilabel_uses_bce_and_sigmoid_scores(tiny_encoder_cls, clip_loader):
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, label_type="multi")
    batch = next(iter(clip_loader(8)))
    target = torch.nn.functional.one_hot(batch["label"], 3).float()
    logits = model(batch)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    torch.testing.assert_close(model.loss(logits, target), expected)
    scores = model.predict_scores(batch)
    torch.testing.assert_close(scores, logits.sigmoid())
    assert not torch.allclose(scores.sum(-1), torch.ones(8))


def test_num_classes_comes_from_the_datamodule(tmp_path, tiny_encoder_cls, clip_loader):
    class DM(L.LightningDataModule):
        num_classes, label_type = 3, "single"

        def train_dataloader(self):
            return clip_loader(16)

    model = SupervisedClassifier(tiny_encoder_cls(4))
    _trainer(tmp_path, 2).fit(model, datamodule=DM())
    assert model.head.out_features == 3 and model.hparams.num_classes == 3
    with pytest.raises(ValueError, match="num_classes"):
        _trainer(tmp_path, 1).fit(SupervisedClassifier(tiny_encoder_cls(4)), train_dataloaders=clip_loader(8))


def test_bad_label_type_and_frozen_encoder_errors(tiny_encoder_cls, clip_loader):
    with pytest.raises(ValueError, match="label_type"):
        SupervisedClassifier(tiny_encoder_cls(4), num_classes=2, label_type="multiclass")
    frozen = FrozenEncoder(tiny_encoder_cls(4))
    assert not any(p.requires_grad for p in frozen.parameters())
    batch = next(iter(clip_loader(4)))
    assert frozen.embed(batch).shape == (4, 4) and frozen.embed_sequence(batch).shape == (4, 10, 4)
    with pytest.raises(RuntimeError, match="nothing to train"):
        frozen.training_step(batch, 0)


def test_load_method_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_method(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.ckpt")
    with pytest.raises(ValueError, match="not written by an ssl_lightning method"):
        load_method(tmp_path / "foreign.ckpt")


def test_compile_option_wraps_the_encoder(tiny_encoder_cls):
    model = SupervisedClassifier(tiny_encoder_cls(4), num_classes=3, compile=True)
    model.configure_model()
    assert isinstance(model.encoder, torch._dynamo.eval_frame.OptimizedModule)
    model.configure_model()  # idempotent: a resumed or re-fitted run does not wrap twice
    assert not isinstance(model.encoder._orig_mod, torch._dynamo.eval_frame.OptimizedModule)


def test_bf16_mixed_precision_trains_on_cpu(tmp_path, tiny_encoder_cls, clip_loader):
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3)
    before = model.head.weight.detach().clone()
    _trainer(tmp_path, 3, precision="bf16-mixed").fit(model, train_dataloaders=clip_loader(24))
    assert model.head.weight.dtype == torch.float32  # mixed precision keeps fp32 weights
    assert not torch.equal(model.head.weight, before) and torch.isfinite(model.head.weight).all()
