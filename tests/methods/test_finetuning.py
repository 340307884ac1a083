"""Fine-tuning with SupervisedClassifier: loss choice, mixup/roll/SpecAugment in the training step,
pre-trained encoder loading (method checkpoints and official BEATs files), and BEATs' spectrogram entry."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from ssl_lightning.augment import SpecAugment
from ssl_lightning.backbones.beats import BEATsClassifier, BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.methods import SupervisedClassifier
from ssl_lightning.methods import supervised as supervised_module
from ssl_lightning.methods.pretrained import load_pretrained_encoder
from ssl_lightning.nn.optim import OptimizerConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beats"


def tiny_beats(**kwargs) -> BEATsEncoder:
    config = BEATsEncoderConfig(
        embed_dim=16,
        encoder_layers=1,
        encoder_embed_dim=16,
        encoder_ffn_embed_dim=32,
        encoder_attention_heads=2,
        conv_pos=8,
        conv_pos_groups=2,
        relative_position_embedding=True,
        gru_rel_pos=True,
        deep_norm=True,
    )
    return BEATsEncoder(config, **kwargs)


@pytest.mark.parametrize(
    ("label_type", "mixup_alpha", "loss", "expected"),
    [
        ("single", 0.0, None, "ce"),
        ("single", 0.8, None, "bce"),
        ("multi", 0.0, None, "bce"),
        ("single", 0, "bce", "bce"),
    ],
)
def test_loss_choice_follows_beats(tiny_encoder_cls, label_type, mixup_alpha, loss, expected):
    model = SupervisedClassifier(
        tiny_encoder_cls(8), num_classes=3, label_type=label_type, mixup_alpha=mixup_alpha, loss=loss
    )
    assert model.loss_name == expected


def test_bad_options_are_rejected(tiny_encoder_cls):
    with pytest.raises(ValueError, match="mixup makes soft targets"):
        SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, mixup_alpha=0.8, loss="ce")
    with pytest.raises(ValueError, match="loss must be one of"):
        SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, loss="focal")
    with pytest.raises(ValueError, match="encode_spectrogram"):
        SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, spec_augment=SpecAugment())
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, roll=True)
    batch = {"image": torch.rand(2, 3, 8, 8), "label": torch.tensor([0, 1])}
    with pytest.raises(ValueError, match="roll augmentation"):
        model.augmented_logits(batch, model.targets(batch["label"]))


def test_mixup_step_mixes_inputs_and_one_hot_targets(tiny_encoder_cls, clip_loader, monkeypatch):
    monkeypatch.setattr(supervised_module, "sample_mixup_ratio", lambda alpha: 0.3)
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, mixup_alpha=0.8)
    batch = next(iter(clip_loader(6)))
    logits, target = model.augmented_logits(batch, model.targets(batch["label"]))
    one_hot = F.one_hot(batch["label"], 3).float()
    assert_close(target, 0.3 * one_hot + 0.7 * one_hot.flip(0))
    mixed = {
        "audio": 0.3 * batch["audio"] + 0.7 * batch["audio"].flip(0),
        "padding_mask": batch["padding_mask"],
    }
    assert_close(logits, model(mixed))
    loss = model.training_step(batch, 0)
    assert_close(loss, F.binary_cross_entropy_with_logits(logits, target))


def test_roll_step_encodes_rolled_waveforms(tiny_encoder_cls, clip_loader):
    model = SupervisedClassifier(tiny_encoder_cls(8), num_classes=3, roll=True)
    batch = next(iter(clip_loader(4)))
    torch.manual_seed(5)
    logits, _ = model.augmented_logits(batch, batch["label"])
    torch.manual_seed(5)
    rolled, mask = supervised_module.random_roll(batch["audio"], batch["padding_mask"])
    assert not torch.equal(rolled, batch["audio"])
    assert_close(logits, model({"audio": rolled, "padding_mask": mask}))


def test_beats_spectrogram_entry_equals_forward_and_uses_dataset_statistics():
    torch.manual_seed(0)
    encoder = tiny_beats().eval()
    waveform = 0.1 * torch.randn(2, 16000)
    features, _ = encoder.encode_spectrogram(encoder.spectrogram(waveform))
    assert_close(features, encoder(waveform)[0])
    esc = tiny_beats(fbank_mean=11.72215, fbank_std=10.60431)
    raw = encoder.spectrogram(waveform) * 2 * 6.55582 + 15.41663  # undo AudioSet's normalisation
    assert_close(esc.spectrogram(waveform), (raw - 11.72215) / (2 * 10.60431), atol=1e-4, rtol=0)


def test_spec_augment_masks_the_fbank_before_the_patches():
    torch.manual_seed(0)
    model = SupervisedClassifier(
        tiny_beats(), num_classes=2, spec_augment=SpecAugment(freq_mask_param=40, time_mask_param=40)
    )
    model.encoder.eval()  # no dropout: only SpecAugment is random
    batch = {"audio": 0.1 * torch.randn(2, 16000), "label": torch.tensor([0, 1])}
    torch.manual_seed(1)
    logits, _ = model.augmented_logits(batch, batch["label"])
    torch.manual_seed(1)
    masked = model.spec_augment(model.encoder.spectrogram(batch["audio"]))
    assert (masked == 0).any()
    expected = model.head(model.encoder.encode_spectrogram(masked)[0].mean(1))
    assert_close(logits, expected)
    assert not torch.allclose(logits, model(batch))
    no_masks = SupervisedClassifier(
        model.encoder, num_classes=2, spec_augment=SpecAugment(freq_mask_param=0, time_mask_param=0)
    )
    no_masks.head = model.head
    assert_close(no_masks.augmented_logits(batch, batch["label"])[0], model(batch))


def test_load_pretrained_encoder_from_a_method_checkpoint(tmp_path, tiny_encoder_cls):
    source = tiny_encoder_cls(8)
    state = {f"encoder.{k}": v for k, v in source.state_dict().items()} | {"head.weight": torch.ones(3, 8)}
    torch.save({"state_dict": state}, tmp_path / "pre.ckpt")
    target = tiny_encoder_cls(8)
    assert not torch.equal(target.proj.weight, source.proj.weight)
    load_pretrained_encoder(target, tmp_path / "pre.ckpt")
    assert torch.equal(target.proj.weight, source.proj.weight)
    with pytest.raises(ValueError, match="do not fit the recipe's encoder"):
        load_pretrained_encoder(tiny_encoder_cls(4), tmp_path / "pre.ckpt")
    torch.save({"state_dict": {"head.weight": torch.ones(3, 8)}}, tmp_path / "head.ckpt")
    with pytest.raises(ValueError, match="no 'encoder"):
        load_pretrained_encoder(target, tmp_path / "head.ckpt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained_encoder(target, tmp_path / "missing.ckpt")


def test_load_pretrained_encoder_from_an_official_finetuned_file(tmp_path):
    checkpoint = torch.load(FIXTURES / "finetuned.pt", weights_only=True)["checkpoint"]
    torch.save(checkpoint, tmp_path / "BEATs_ft.pt")
    reference = BEATsClassifier.from_official_checkpoint(checkpoint).encoder
    encoder = BEATsEncoder(reference.config)
    load_pretrained_encoder(encoder, tmp_path / "BEATs_ft.pt")  # the predictor.* head is left out
    for name, tensor in reference.state_dict().items():
        assert torch.equal(encoder.state_dict()[name], tensor), name


def test_fit_loads_pretrained_weights_but_resume_does_not(tmp_path, tiny_encoder_cls, clip_loader):
    source = tiny_encoder_cls(8)
    torch.save(
        {"state_dict": {f"encoder.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "p.ckpt"
    )
    frozen_lr = OptimizerConfig(lr=0.0, weight_decay=0.0)
    model = SupervisedClassifier(
        tiny_encoder_cls(8), num_classes=3, pretrained_checkpoint=str(tmp_path / "p.ckpt"), optim=frozen_lr
    )
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(model, train_dataloaders=clip_loader(8))
    assert torch.equal(model.encoder.proj.weight, source.proj.weight)
    trainer.save_checkpoint(tmp_path / "run.ckpt")
    (tmp_path / "p.ckpt").unlink()  # resuming needs the run's checkpoint only
    resumed = SupervisedClassifier(
        tiny_encoder_cls(8), num_classes=3, pretrained_checkpoint=str(tmp_path / "p.ckpt"), optim=frozen_lr
    )
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(
        resumed, train_dataloaders=clip_loader(8), ckpt_path=tmp_path / "run.ckpt", weights_only=False
    )
    assert torch.equal(resumed.encoder.proj.weight, source.proj.weight)
