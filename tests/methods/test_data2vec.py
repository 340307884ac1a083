"""data2vec / data2vec 2.0 method: the rules of the paper and the official code, with tiny encoders.

Worked examples: the tau schedule, the loss scale (sqrt(D) per token when prediction = target + 1), the
smooth L1 values, one teacher pass per M clones, the sub-layer and norm of the targets, the masking
statistics per modality, the EMA update of an optimizer step with copied (not averaged) shared parts,
the collapse guards, starting from a Hugging Face directory, and a checkpoint round trip.
"""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from ssl_lightning.backbones import (
    Data2VecAudioConfig,
    Data2VecAudioEncoder,
    Data2VecTextConfig,
    Data2VecTextEncoder,
    Data2VecVisionConfig,
    Data2VecVisionEncoder,
)
from ssl_lightning.methods import load_method
from ssl_lightning.methods.data2vec import Data2Vec
from ssl_lightning.methods.data2vec_config import (
    DecoderConfig,
    EMAConfig,
    LossConfig,
    MaskingConfig,
    TargetConfig,
)
from ssl_lightning.nn.optim import OptimizerConfig

D = 32


def audio_encoder(**overrides) -> Data2VecAudioEncoder:
    config = dict(
        hidden_size=D,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=2,
        num_conv_pos_embedding_groups=4,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        layerdrop=0.0,
    )
    return Data2VecAudioEncoder(Data2VecAudioConfig(**{**config, **overrides}))


def vision_encoder(image_size: int = 32, patch_size: int = 4) -> Data2VecVisionEncoder:
    config = Data2VecVisionConfig(
        hidden_size=D,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=image_size,
        patch_size=patch_size,
        use_mask_token=True,
        use_shared_relative_position_bias=True,
        use_mean_pooling=False,
        drop_path_rate=0.0,
    )
    return Data2VecVisionEncoder(config)


def text_encoder() -> Data2VecTextEncoder:
    config = Data2VecTextConfig(
        vocab_size=100,
        hidden_size=D,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=40,
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return Data2VecTextEncoder(config)


def audio_batch(batch: int = 2, seconds: float = 1.0) -> dict[str, torch.Tensor]:
    audio = torch.randn(batch, int(16000 * seconds), generator=torch.Generator().manual_seed(1))
    return {"audio": audio}


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_tau_follows_the_linear_schedule_of_the_paper():
    method = Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2), ema=EMAConfig(0.999, 0.9999, 30000))
    assert method.tau(0) == pytest.approx(0.999)
    assert method.tau(15000) == pytest.approx(0.99945)
    assert method.tau(30000) == pytest.approx(0.9999)
    assert method.tau(100000) == pytest.approx(0.9999)


def test_loss_is_the_scaled_feature_sum_averaged_over_masked_tokens(monkeypatch):
    """prediction = target + 1 everywhere: L2 gives D / sqrt(D) = sqrt(D) per token; smooth L1 (beta 2)
    gives 0.25 per element, 0.25 D / sqrt(D); `dim` scaling gives the mean over features."""
    for loss, expected in (
        (LossConfig(beta=0.0), math.sqrt(D)),
        (LossConfig(beta=2.0), 0.25 * D / math.sqrt(D)),
        (LossConfig(beta=2.0, scale="dim"), 0.25),
        (LossConfig(beta=0.0, scale=1.0), float(D)),
    ):
        method = Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2), loss=loss)
        targets = {}

        def fixed_targets(x, padding_mask, tokens, store=targets):
            store["t"] = torch.randn(x.shape[0], 16, D)
            return store["t"]

        def shifted(student, padding_mask, mask, gen, store=targets):
            return store["t"] + 1.0, None  # clone_batch 1

        monkeypatch.setattr(method, "teacher_targets", fixed_targets)
        monkeypatch.setattr(method, "student_predictions", shifted)
        monkeypatch.setattr(method, "draw_mask", lambda rows, length, pad, gen: torch.rand(rows, 16) < 0.5)
        output = method(audio_batch(), generator())
        assert output.num_masked > 0
        assert output.loss.item() == pytest.approx(expected, rel=1e-5)


def test_cls_loss_is_weighted_and_summed_over_student_rows():
    """data2vec 2.0 images: cls_weight * sum over rows of the CLS output's scaled squared error against the
    sample's mean target (fairseq multiplies by the masked count, which the normalisation divides out)."""
    method = Data2Vec(
        vision_encoder(),
        MaskingConfig("inverse_block", 0.8, 3, mask_prob_adjust=0.07),
        TargetConfig(top_k=2, layer_norm="instance", final_norm=("layer",)),
        LossConfig(cls_weight=0.01),
        clone_batch=2,
        visible_only=True,
        decoder=DecoderConfig(decoder_dim=16, groups=4, kernel_size=3, layers=2),
    )
    captured = {}
    encode = method.encoder.encode_tokens

    def capture(*args, **kwargs):
        captured["encoding"] = encode(*args, **kwargs)
        return captured["encoding"]

    method.encoder.encode_tokens = capture
    images = torch.rand(3, 3, 32, 32, generator=generator(2))
    output = method({"image": images}, generator())
    targets = method.teacher_targets(images, None, None)
    cls_target = targets.mean(dim=1).repeat_interleave(2, 0)
    cls_output = captured["encoding"].output[:, 0]
    expected = 0.01 * ((cls_output - cls_target) ** 2).sum() / math.sqrt(D)
    assert output.cls.item() == pytest.approx(expected.item(), rel=1e-5)
    assert output.loss.item() == pytest.approx((output.regression + output.cls).item(), rel=1e-6)


def test_one_teacher_pass_serves_all_clones():
    method = Data2Vec(
        audio_encoder(),
        MaskingConfig("block_1d", 0.5, 5),
        TargetConfig(top_k=2),
        clone_batch=4,
        visible_only=True,
        decoder=DecoderConfig(decoder_dim=16, groups=4, kernel_size=7, layers=2),
    )
    calls = {"teacher": [], "student": []}
    teacher_encode, student_encode = method.teacher.module.encode_tokens, method.encoder.encode_tokens

    def teacher(tokens, *args, **kwargs):
        calls["teacher"].append(tokens.shape)
        return teacher_encode(tokens, *args, **kwargs)

    def student(tokens, *args, **kwargs):
        calls["student"].append((tokens.shape, kwargs["keep_index"].shape))
        return student_encode(tokens, *args, **kwargs)

    method.teacher.module.encode_tokens, method.encoder.encode_tokens = teacher, student
    output = method(audio_batch(batch=3), generator())
    frames = calls["teacher"][0][1]
    assert calls["teacher"] == [torch.Size([3, frames, D])]  # one teacher pass on the 3 clips
    (student_shape, keep_shape), *rest = calls["student"]
    assert not rest and student_shape[0] == 12 and keep_shape == (12, frames - int(0.5 * frames))
    assert output.mask.shape == (12, frames)
    assert (output.mask.sum(dim=1) == int(0.5 * frames)).all()  # 2.0 audio: int(0.5 T) masked per view


def test_targets_are_the_normalised_top_k_ffn_outputs_for_speech_and_block_outputs_for_vision():
    method = Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2, sublayer="ffn", layer_norm="instance"))
    batch = audio_batch()
    tokens, padding = method.encoder.embed_tokens(batch["audio"])
    targets = method.teacher_targets(batch["audio"], None, (tokens, padding))
    encoding = method.teacher.module.encode_tokens(tokens.detach(), padding)
    by_hand = (
        sum(F.instance_norm(layer.transpose(1, 2)).transpose(1, 2) for layer in encoding.ffn_outputs[-2:]) / 2
    )
    torch.testing.assert_close(targets, by_hand, atol=1e-5, rtol=1e-5)

    vision = Data2Vec(
        vision_encoder(),
        MaskingConfig("beit_block", 0.6, min_block_patches=4),
        TargetConfig(top_k=2, sublayer="block", layer_norm="layer", final_norm=("layer",)),
    )
    images = torch.rand(2, 3, 32, 32, generator=generator(3))
    encoding = vision.teacher.module.encode_tokens(vision.teacher.module.embed_tokens(images)[0])
    layers = [F.layer_norm(layer[:, 1:], (D,)) for layer in encoding.block_outputs[-2:]]
    by_hand = F.layer_norm((layers[0] + layers[1]) / 2, (D,))
    torch.testing.assert_close(vision.teacher_targets(images, None, None), by_hand, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    ("encoder", "masking", "length", "masked"),
    [
        ("vision56", MaskingConfig("inverse_block", 0.8, 3, mask_prob_adjust=0.07), 196, 157),  # 14 x 14 grid
        ("audio", MaskingConfig("block_1d", 0.5, 5, mask_prob_adjust=0.05), 100, 50),
        ("text", MaskingConfig("random", 0.48), 40, 40 - int(40 * 0.52)),
    ],
)
def test_equal_count_masks_per_modality(encoder, masking, length, masked):
    encoders = {"vision56": lambda: vision_encoder(56, 4), "audio": audio_encoder, "text": text_encoder}
    method = Data2Vec(
        encoders[encoder](),
        masking,
        TargetConfig(top_k=2),
        visible_only=True,
        decoder=DecoderConfig(decoder_dim=16, groups=4, kernel_size=3, layers=1),
    )
    mask = method.draw_mask(64, length, None, generator())
    assert mask.shape == (64, length)
    assert (mask.sum(dim=1) == masked).all()


def test_span_masks_of_speech_mask_about_half_of_long_clips():
    method = Data2Vec(audio_encoder(), MaskingConfig("span", 0.65, 10), TargetConfig(top_k=2))
    mask = method.draw_mask(8, 500, None, generator())
    assert (mask.sum(dim=1) == mask.sum(dim=1)[0]).all()  # require_same_masks
    assert 0.35 < mask.float().mean().item() < 0.55


def test_beit_block_masks_of_vision_stay_within_the_budget():
    method = Data2Vec(vision_encoder(56, 4), MaskingConfig("beit_block", 0.6122449), TargetConfig(top_k=2))
    mask = method.draw_mask(32, 196, None, generator())
    counts = mask.sum(dim=1)
    assert (counts <= 120).all() and counts.float().mean() > 100  # 120 of 196 patches (BEiT's budget)


def test_text_token_masking_regresses_only_where_the_input_is_mask():
    method = Data2Vec(
        text_encoder(),
        MaskingConfig("token", 0.5, 1, random_token_prob=0.1, leave_unmasked_prob=0.1),
        TargetConfig(top_k=2, layer_norm="layer"),
        LossConfig(beta=4.0, scale=1.0),
        head_layers=2,
        mask_token_id=4,
    )
    seen = {}
    embed = method.encoder.embed_tokens

    def capture(ids, padding_mask=None):
        seen.setdefault("ids", ids)
        return embed(ids, padding_mask)

    method.encoder.embed_tokens = capture
    ids = torch.randint(5, 100, (4, 20), generator=generator(4))
    ids[:, 0], ids[:, -1] = 0, 2
    output = method({"input_ids": ids, "padding_mask": torch.zeros_like(ids, dtype=torch.bool)}, generator())
    assert torch.equal(output.mask, seen["ids"] == 4)
    assert output.num_masked == int((seen["ids"] == 4).sum()) > 0
    assert not output.mask[:, 0].any() and not output.mask[:, -1].any()  # <s> and </s> are never masked


def test_invalid_combinations_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="visible_only"):
        Data2Vec(vision_encoder(), MaskingConfig("beit_block", 0.6), TargetConfig(top_k=2), visible_only=True)
    with pytest.raises(ValueError, match="does not fit"):
        Data2Vec(text_encoder(), MaskingConfig("span", 0.65), TargetConfig(top_k=2))
    with pytest.raises(ValueError, match="top_k"):
        Data2Vec(audio_encoder(), targets=TargetConfig(top_k=4))
    with pytest.raises(ValueError, match="CLS"):
        Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2), loss=LossConfig(cls_weight=0.01))
    with pytest.raises(ValueError, match="mask_token_id"):
        method = Data2Vec(text_encoder(), MaskingConfig("token", 0.15, 1), TargetConfig(top_k=2))
        method({"input_ids": torch.randint(5, 100, (2, 8))}, generator())


def test_collapse_guard_stops_with_a_named_statistic():
    method = Data2Vec(
        audio_encoder(), targets=TargetConfig(top_k=2), min_target_std=100.0, collapse_check_after=0
    )
    output = method(audio_batch(), generator())
    with pytest.raises(RuntimeError, match="target std .* < 100.0"):
        method.check_collapse(output)
    late = Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2), min_target_std=100.0)
    late.check_collapse(output)  # before collapse_check_after (5000 updates) nothing is checked


def fit(method: Data2Vec, tmp_path, steps: int = 2, **trainer_kwargs) -> L.Trainer:
    data = DataLoader([{"audio": w} for w in audio_batch(batch=4)["audio"]], batch_size=2)
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **trainer_kwargs,
    )
    trainer.fit(method, train_dataloaders=data)
    return trainer


def test_an_optimizer_step_averages_the_teacher_and_copies_the_shared_parts(tmp_path):
    """decay 0.5 (constant): teacher = 0.5 teacher + 0.5 student after the step, except `ema_skip_keys`
    (the CNN, the projection and the positional conv of speech), which are the student's exactly."""
    torch.manual_seed(0)
    method = Data2Vec(
        audio_encoder(),
        targets=TargetConfig(top_k=2),
        ema=EMAConfig(0.5, 0.5, 0),
        optim=OptimizerConfig(name="sgd", lr=0.5, weight_decay=0.0),
    )
    before = {k: v.clone() for k, v in method.teacher.module.state_dict().items()}
    fit(method, tmp_path, steps=1)
    student, teacher = method.encoder.state_dict(), method.teacher.module.state_dict()
    skipped = averaged = 0
    for name, value in teacher.items():
        if any(name.startswith(key) for key in method.encoder.ema_skip_keys):
            assert torch.equal(value, student[name]), name
            skipped += 1
        else:
            torch.testing.assert_close(value, 0.5 * before[name] + 0.5 * student[name], msg=name)
            averaged += int(not torch.equal(student[name], before[name]))
    assert skipped >= 4 and averaged > 10
    assert all(not p.requires_grad for p in method.teacher.parameters())


def test_fit_starts_from_a_hugging_face_directory(tmp_path):
    source = audio_encoder()
    torch.nn.init.normal_(source.encoder.layers[0].feed_forward.output_dense.weight)
    source.to_huggingface(tmp_path / "hf")
    method = Data2Vec(
        audio_encoder(),
        targets=TargetConfig(top_k=2),
        pretrained_checkpoint=str(tmp_path / "hf"),
        optim=OptimizerConfig(name="sgd", lr=0.0, weight_decay=0.0),
    )
    fit(method, tmp_path, steps=1)
    for name, value in source.state_dict().items():
        assert torch.equal(method.encoder.state_dict()[name], value), name
        # the teacher is the copy of the loaded student, then tau t + (1 - tau) s of equal values (rounding)
        torch.testing.assert_close(method.teacher.module.state_dict()[name], value, rtol=1e-6, atol=1e-7)


def test_checkpoint_round_trip_restores_student_teacher_and_head(tmp_path):
    method = Data2Vec(
        audio_encoder(),
        MaskingConfig("block_1d", 0.5, 5),
        TargetConfig(top_k=2),
        clone_batch=2,
        visible_only=True,
        decoder=DecoderConfig(decoder_dim=16, groups=4, kernel_size=7, layers=2),
    )
    trainer = fit(method, tmp_path)
    trainer.save_checkpoint(tmp_path / "d2v.ckpt")
    restored = load_method(tmp_path / "d2v.ckpt")
    assert isinstance(restored, Data2Vec) and restored.clone_batch == 2
    for name, value in method.state_dict().items():
        assert torch.equal(restored.state_dict()[name], value), name
    batch = audio_batch()
    method.eval(), restored.eval()
    torch.testing.assert_close(restored.embed(batch), method.embed(batch), rtol=0, atol=0)


class PositionMasks(Data2Vec):
    """Masks that depend on the position only (every row the same pattern), so the rows of a rank's batch
    are masked as the same rows of the one-process batch: the DDP comparison tests training, not the RNG."""

    def draw_mask(self, rows, length, padding_mask, generator):
        mask = torch.zeros(rows, length, dtype=torch.bool)
        mask[:, 3 : length // 2] = True
        return mask


class SaveState(L.Callback):
    def __init__(self, out_dir) -> None:
        self.out_dir = out_dir

    def on_train_end(self, trainer: L.Trainer, pl_module: Data2Vec) -> None:
        torch.save(dict(pl_module.state_dict()), self.out_dir / f"rank{trainer.global_rank}.pt")


def _fit_ranks(quiet_trainer, rank_interleaved_cls, devices: int, out_dir) -> list[dict]:
    """2 steps of 4 clips (split over `devices` ranks): every rank's state dict."""
    out_dir.mkdir()
    torch.manual_seed(0)
    method = PositionMasks(
        audio_encoder(),
        MaskingConfig("span", 0.65, 10),
        TargetConfig(top_k=2),
        ema=EMAConfig(0.9, 0.9, 0),
        optim=OptimizerConfig(name="sgd", lr=0.5, weight_decay=0.0),
    )
    waves = torch.randn(8, 8000, generator=torch.Generator().manual_seed(3))
    data = DataLoader([{"audio": w} for w in waves], batch_size=4 // devices, sampler=rank_interleaved_cls(8))
    trainer = quiet_trainer(
        devices=devices,
        strategy="ddp_fork" if devices > 1 else "auto",
        max_steps=2,
        callbacks=[SaveState(out_dir)],
        use_distributed_sampler=False,
    )
    trainer.fit(method, train_dataloaders=data)
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(devices)]


@pytest.mark.distributed
def test_two_gloo_ranks_train_student_and_teacher_as_one_process(
    tmp_path, quiet_trainer, rank_interleaved_cls
):
    single = _fit_ranks(quiet_trainer, rank_interleaved_cls, 1, tmp_path / "single")[0]
    ranks = _fit_ranks(quiet_trainer, rank_interleaved_cls, 2, tmp_path / "ddp")
    for name, value in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name
        torch.testing.assert_close(ranks[0][name], value, rtol=1e-5, atol=1e-6, msg=name)
    weight = "encoder.encoder.layers.0.feed_forward.output_dense.weight"
    assert not torch.equal(single[weight.replace("encoder.", "teacher.module.", 1)], single[weight])  # lags


def test_feature_grad_mult_scales_only_the_front_end_gradient():
    """fairseq's feature_grad_mult: the conv front-end's gradient is multiplied by it, the rest is not."""
    grads = {}
    for mult in (1.0, 0.1):
        torch.manual_seed(0)
        method = Data2Vec(audio_encoder(), targets=TargetConfig(top_k=2), feature_grad_mult=mult)
        method(audio_batch(), generator()).loss.backward()
        conv = method.encoder.feature_extractor.conv_layers[0].conv.weight.grad
        block = method.encoder.encoder.layers[0].feed_forward.output_dense.weight.grad
        grads[mult] = (conv.clone(), block.clone())
    torch.testing.assert_close(grads[0.1][0], 0.1 * grads[1.0][0], rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(grads[0.1][1], grads[1.0][1], rtol=1e-5, atol=1e-9)
    assert grads[1.0][0].abs().sum() > 0
