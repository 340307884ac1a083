"""BEATs self-distilled tokenizer training: eq. 3, straight-through gradients, frozen teacher, learning,
checkpoints (restore, resume, official export) and teacher files."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.testing import assert_close
from torch.utils.data import DataLoader

from ssl_lightning.backbones.beats import BEATsClassifier, BEATsConfig, BEATsEncoder
from ssl_lightning.methods import SupervisedClassifier, load_method
from ssl_lightning.methods.beats_tokenizer import (
    FrameLogits,
    SelfDistilledTokenizerTraining,
    load_teacher,
    self_distillation_loss,
)
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.tokenizers import SelfDistilledTokenizer, SelfDistilledTokenizerConfig

SIZE = dict(
    embed_dim=32, encoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2,
    conv_pos=4, conv_pos_groups=2, dropout=0.0, attention_dropout=0.0, relative_position_embedding=True,
    gru_rel_pos=True, deep_norm=True,
)  # fmt: skip
SAMPLES = 6400  # 38 fbank frames: 2 x 8 = 16 patches per clip


def tokenizer_config() -> SelfDistilledTokenizerConfig:
    return SelfDistilledTokenizerConfig(**SIZE, quant_n=8, quant_dim=4)


def teacher(seed: int = 1) -> BEATsEncoder:
    torch.manual_seed(seed)
    return BEATsEncoder(BEATsConfig(**SIZE))


def classifier(seed: int = 2) -> BEATsClassifier:
    torch.manual_seed(seed)
    return BEATsClassifier(BEATsConfig(**SIZE, predictor_class=5))


def method(seed: int = 0, **kwargs) -> SelfDistilledTokenizerTraining:
    kwargs.setdefault("teacher", teacher())
    kwargs.setdefault("optim", OptimizerConfig(lr=2e-3, weight_decay=0.01, betas=(0.9, 0.98), warmup_steps=2))
    torch.manual_seed(seed)
    return SelfDistilledTokenizerTraining(tokenizer_config(), **kwargs)


def batches(num: int = 2, size: int = 4) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    t = torch.arange(SAMPLES) / 16000
    out = []
    for _ in range(num):
        freq = 200 + 3000 * torch.rand(size, 1, generator=g)
        audio = 0.5 * torch.sin(2 * math.pi * freq * t) + 0.05 * torch.randn(size, SAMPLES, generator=g)
        out.append({"audio": audio, "padding_mask": torch.zeros(size, SAMPLES, dtype=torch.bool)})
    return out


def trainer(tmp_path, steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **{"enable_checkpointing": False, **kwargs},
    )


def loader() -> DataLoader:
    return DataLoader(batches(), batch_size=None)


def test_eq3_worked_example_values_gradients_and_padding():
    prediction = torch.tensor([[[1.0, 0.0], [5.0, 5.0]]], requires_grad=True)
    target = torch.tensor([[[1.0, 1.0], [-1.0, 2.0]]])
    encoded = torch.tensor([[[3.0, 4.0], [9.0, -9.0]]], requires_grad=True)  # l2: (0.6, 0.8)
    codewords = torch.tensor([[[0.0, 1.0], [1.0, 0.0]]], requires_grad=True)
    valid = torch.tensor([[True, False]])  # the second patch is padding: no value, no gradient
    losses = self_distillation_loss(prediction, target, encoded, codewords, valid)
    assert losses.cosine.item() == pytest.approx(1 / math.sqrt(2))
    assert losses.codebook.item() == pytest.approx((0.6**2 + 0.2**2) / 2)  # MSE((0.6, 0.8), (0, 1)) = 0.2
    assert losses.commitment.item() == pytest.approx(0.2)
    assert losses.loss.item() == pytest.approx(-1 / math.sqrt(2) + 0.4)
    losses.loss.backward()
    # commitment: d/dl2(e) = 2 (l2(e) - v) / Q = (0.6, -0.2), through l2 at e = (3, 4): (I - u u^T) g / |e|
    assert_close(encoded.grad[0, 0], torch.tensor([0.48, -0.36]) / 5)
    # codebook term: d/dv = -2 (l2(e) - v) / Q = (-0.6, 0.2), projected on the tangent of v = (0, 1)
    assert_close(codewords.grad[0, 0], torch.tensor([-0.6, 0.0]))
    # -cos: d/do at o = (1, 0), ô = (1, 1): -(ô/|ô| - cos o/|o|) / |o| = -(1/sqrt2 - 1/sqrt2, 1/sqrt2)
    assert_close(prediction.grad[0, 0], torch.tensor([0.0, -1 / math.sqrt(2)]))
    for grad in (prediction.grad, encoded.grad, codewords.grad):
        assert torch.equal(grad[0, 1], torch.zeros(2))
    assert self_distillation_loss(prediction, target, encoded, codewords).cosine.item() == pytest.approx(
        (1 / math.sqrt(2) + 5 / math.sqrt(250)) / 2  # cos((5, 5), (-1, 2)) = 5 / sqrt(250)
    )


class FixedTeacher(nn.Module):
    """A teacher whose targets are `target[B, N, C]` for any audio (no padding mask)."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.target = target
        self.embed_dim = target.shape[-1]

    def forward(self, audio: torch.Tensor, padding_mask: torch.Tensor | None) -> tuple[torch.Tensor, None]:
        return self.target, None


def test_training_forward_worked_example_uses_the_codewords_before_the_ema_step(monkeypatch):
    target = torch.tensor([[[1.0, 1.0], [1.0, 0.0]]])  # teacher outputs ô_t
    prediction = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # estimator outputs o_t
    encoded = torch.tensor([[[4.0, 3.0], [-3.0, 4.0]]])  # e_t: l2 (0.8, 0.6) and, at padding, (-0.6, 0.8)
    module = SelfDistilledTokenizerTraining(
        SelfDistilledTokenizerConfig(**SIZE, quant_n=2, quant_dim=2), teacher=FixedTeacher(target)
    ).train()
    monkeypatch.setattr(module.estimator, "forward", lambda quantized, padding: prediction)
    padding = torch.tensor([[False, True]])
    monkeypatch.setattr(module.tokenizer, "encode", lambda audio, padding_mask: (encoded, padding))
    quantize = module.tokenizer.quantize
    quantize.embedding.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    quantize.embedding.initted.fill_(1.0)
    quantize.decay = 0.5
    output = module({"audio": torch.zeros(1, SAMPLES)})
    assert output.indices.tolist() == [[0, 1]]
    # the valid patch only: cos((1, 0), (1, 1)) = 1/sqrt2; ||(0.8, 0.6) - (1, 0)||^2 / 2 = 0.2 with the
    # codeword before the EMA step (after it, (0.9, 0.3) / sqrt(0.9), the term would be 0.051)
    assert output.losses.cosine.item() == pytest.approx(1 / math.sqrt(2))
    assert output.losses.codebook.item() == pytest.approx(0.2)
    assert output.losses.commitment.item() == pytest.approx(0.2)
    assert output.losses.loss.item() == pytest.approx(-1 / math.sqrt(2) + 0.4)
    # the EMA step moved code 0 towards (0.8, 0.6); the padded patch did not move code 1
    expected = torch.tensor([[0.9 / math.sqrt(0.9), 0.3 / math.sqrt(0.9)], [0.0, 1.0]])
    assert_close(quantize.embedding.weight, expected)


def test_straight_through_gradient_reaches_the_tokenizer_encoder():
    module = method().train()
    batch = batches(1)[0]
    with torch.no_grad():
        target, _ = module.teacher(batch["audio"])
    encoded, _ = module.tokenizer.encode(batch["audio"])
    encoded.retain_grad()
    quantized = module.tokenizer.quantize(encoded).quantized
    quantized.retain_grad()
    prediction = module.estimator(quantized)
    (-F.cosine_similarity(prediction, target, dim=-1).mean()).backward()
    # the quantizer is the identity in the backward pass: dL/dl2(e) = dL/dquantized
    unit = encoded.detach().requires_grad_()
    (expected,) = torch.autograd.grad(F.normalize(unit, dim=-1), unit, quantized.grad)
    assert_close(encoded.grad, expected)
    assert module.tokenizer.encoder.patch_embedding.weight.grad.abs().sum() > 0
    assert module.tokenizer.quantize_layer[0].weight.grad.abs().sum() > 0


def test_teacher_is_frozen_and_stays_in_eval_mode(tmp_path):
    module = method()
    module.train()
    assert not module.teacher.training and not any(m.training for m in module.teacher.modules())
    assert module.estimator.training and module.tokenizer.training
    assert not any(p.requires_grad for p in module.teacher.parameters())
    before = {k: v.clone() for k, v in module.teacher.state_dict().items()}
    trainer(tmp_path, 2).fit(module, train_dataloaders=loader())
    assert all(torch.equal(before[k], v) for k, v in module.teacher.state_dict().items())
    assert all(p.grad is None for p in module.teacher.parameters())
    optimized = {id(p) for group in module.optimizers().optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in module.teacher.parameters()}


def test_loss_decreases_on_a_fixed_batch():
    module = method().train()
    batch = batches(1, size=2)[0]
    optimizer = torch.optim.AdamW(module.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = module(batch).losses.loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.2, losses


def test_fit_logs_terms_and_codebook_usage_and_initialises_the_codebook(tmp_path):
    module = method()
    assert module.tokenizer.quantize.embedding.initted.item() == 0
    fit = trainer(tmp_path, 2, limit_val_batches=1, num_sanity_val_steps=1)  # skipped: fresh codebook
    fit.fit(module, train_dataloaders=loader(), val_dataloaders=DataLoader(batches(1), batch_size=None))
    assert module.tokenizer.quantize.embedding.initted.item() == 1
    metrics = fit.callback_metrics
    for stage in ("train", "val"):
        for name in ("loss", "cosine", "codebook", "commitment", "codes_used", "perplexity"):
            assert torch.isfinite(metrics[f"{stage}/{name}"]), f"{stage}/{name}"
        assert 1 <= metrics[f"{stage}/codes_used"] <= 8
        assert 1 <= metrics[f"{stage}/perplexity"] <= metrics[f"{stage}/codes_used"] + 1e-4


def test_embeddings_are_the_tokenizer_encoder_features():
    module = method().eval()
    batch = batches(1)[0]
    with torch.no_grad():
        features, _ = module.tokenizer.encoder(batch["audio"], batch["padding_mask"])
        assert_close(module.embed_sequence(batch), features)
        assert_close(module.embed(batch), features.mean(dim=1))
    assert module.embed_dim == 16


def test_checkpoint_restores_labels_without_the_teacher_file_and_exports_the_official_format(tmp_path):
    teacher_file = tmp_path / "runs" / "beats" / "iter1" / "checkpoints" / "teacher.pt"
    teacher_file.parent.mkdir(parents=True)
    torch.save(teacher().to_official_checkpoint(), teacher_file)
    module = method(teacher=None, teacher_checkpoint=str(teacher_file))
    assert module.teacher is None and module.estimator is None  # loaded when fitting starts
    fit = trainer(tmp_path, 2)
    fit.fit(module, train_dataloaders=loader())
    assert isinstance(module.teacher, BEATsEncoder) and module.hparams.target_dim == 16
    path = tmp_path / "tokenizer.ckpt"
    fit.save_checkpoint(path)
    resume = trainer(tmp_path, 3)  # resuming loads the teacher file again, before the checkpoint
    resume.fit(
        method(teacher=None, teacher_checkpoint=str(teacher_file)),
        train_dataloaders=loader(),
        ckpt_path=path,
        weights_only=False,
    )
    assert resume.global_step == 3
    teacher_file.unlink()
    checkpoint = torch.load(path, weights_only=False)
    assert not any(key.startswith("teacher.") for key in checkpoint["state_dict"])
    assert "teacher" not in checkpoint["hyper_parameters"]
    restored = load_method(path)
    assert type(restored) is SelfDistilledTokenizerTraining and restored.teacher is None
    audio = batches(1)[0]["audio"]
    labels = module.tokenizer.eval().extract_labels(audio)
    assert len(labels.unique()) > 1
    assert torch.equal(restored.tokenizer.eval().extract_labels(audio), labels)
    assert torch.equal(restored.estimator.input_proj.weight, module.estimator.input_proj.weight)
    with pytest.raises(
        FileNotFoundError, match="run `lightning fit --config recipes/beats_iter1.yaml` first"
    ):
        restored.setup("fit")

    official = module.tokenizer.to_official_checkpoint()
    assert official["model"]["quantize.embedding.initted"].item() == 1.0
    torch.save(official, tmp_path / "tokenizer.pt")
    reloaded = SelfDistilledTokenizer.from_official_checkpoint(tmp_path / "tokenizer.pt").eval()
    assert torch.equal(reloaded.extract_labels(audio), labels)
    assert all(
        torch.equal(v, official["model"][k]) for k, v in reloaded.to_official_checkpoint()["model"].items()
    )


def test_resume_equals_the_uninterrupted_run(tmp_path):
    # Lightning 2.6 restarts the dataloader when resuming from an epoch-end checkpoint (it serves the
    # epoch's first batch again), so every batch is the same one here: the test is about the state.
    def loader() -> DataLoader:
        return DataLoader(batches(1) * 2, batch_size=None)

    L.seed_everything(0)
    straight = method()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)  # every epoch = 2 steps
    trainer(tmp_path, 4, enable_checkpointing=True, callbacks=[checkpoints]).fit(
        straight, train_dataloaders=loader()
    )
    step2 = tmp_path / "ckpt" / "epoch=0-step=2.ckpt"
    assert step2.is_file()

    L.seed_everything(1)  # another seed and init: everything must come from the checkpoint
    resumed = method(seed=1)
    resume = trainer(tmp_path, 4)
    resume.fit(resumed, train_dataloaders=loader(), ckpt_path=step2, weights_only=False)
    assert resume.global_step == 4
    expected = straight.state_dict()
    for key, value in resumed.state_dict().items():
        assert_close(value, expected[key], atol=1e-5, rtol=1e-4, msg=key)
    at_step2 = torch.load(step2, weights_only=False)["state_dict"]["estimator.input_proj.weight"]
    assert not torch.allclose(at_step2, straight.estimator.input_proj.weight)

    with pytest.raises(ValueError, match="teacher differs"):
        trainer(tmp_path, 4).fit(
            method(teacher=teacher(seed=9)), train_dataloaders=loader(), ckpt_path=step2, weights_only=False
        )


def test_logits_teacher_distils_per_patch_logits():
    fine_tuned = classifier()
    module = method(teacher=fine_tuned, teacher_target="logits")
    assert isinstance(module.teacher, FrameLogits) and module.estimator.output_head[-1].out_features == 5
    audio = batches(1)[0]["audio"]
    with torch.no_grad():
        expected, _ = fine_tuned.eval().frame_logits(audio)
        assert_close(module.teacher(audio)[0], expected)
    assert isinstance(method(teacher=fine_tuned).teacher, BEATsEncoder)  # "features": its encoder
    with pytest.raises(TypeError, match="needs a fine-tuned classifier"):
        method(teacher=teacher(), teacher_target="logits")


def test_teacher_files(tmp_path):
    missing = method(
        teacher=None, teacher_checkpoint=str(tmp_path / "runs/beats/beats_iter2/checkpoints/last.ckpt")
    )
    with pytest.raises(
        FileNotFoundError, match="run `lightning fit --config recipes/beats_iter2.yaml` first"
    ):
        missing.setup("fit")
    with pytest.raises(ValueError, match="not both"):
        method(teacher_checkpoint="x.pt")
    with pytest.raises(ValueError, match="needs a teacher"):
        method(teacher=None)
    with pytest.raises(RuntimeError, match="no teacher attached"):
        missing(batches(1)[0])

    pretrained = teacher()
    torch.save(pretrained.to_official_checkpoint(), tmp_path / "encoder.pt")
    loaded = load_teacher(tmp_path / "encoder.pt", "features")
    assert isinstance(loaded, BEATsEncoder) and not loaded.training
    assert torch.equal(loaded.layer_norm.weight, pretrained.layer_norm.weight)
    with pytest.raises(ValueError, match="finetuned_model=False"):
        load_teacher(tmp_path / "encoder.pt", "logits")

    torch.save(classifier().to_official_checkpoint(), tmp_path / "finetuned.pt")
    module = method(teacher=None, teacher_checkpoint=str(tmp_path / "finetuned.pt"), teacher_target="logits")
    module.setup("fit")
    assert isinstance(module.teacher, FrameLogits) and module.teacher.embed_dim == 5
    assert module.estimator.target_dim == 5
    assert not any(p.requires_grad for p in module.teacher.parameters())

    supervised = SupervisedClassifier(teacher(), num_classes=3)
    labelled = [{**batch, "label": torch.tensor([0, 1, 2, 0])} for batch in batches(1)]
    supervised_trainer = trainer(tmp_path, 1)
    supervised_trainer.fit(supervised, train_dataloaders=DataLoader(labelled, batch_size=None))
    supervised_trainer.save_checkpoint(tmp_path / "supervised.ckpt")
    from_ckpt = load_teacher(tmp_path / "supervised.ckpt", "logits")
    assert isinstance(from_ckpt, FrameLogits) and from_ckpt.embed_dim == 3
    assert isinstance(load_teacher(tmp_path / "supervised.ckpt", "features"), BEATsEncoder)
