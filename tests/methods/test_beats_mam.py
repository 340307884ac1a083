"""BEATs masked audio modelling: visible-only encoding, predictor input, eq. 4, frozen tokenizer,
learning, exact resume and checkpoints that need no tokenizer file."""

from __future__ import annotations

import warnings

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from ssl_lightning.backbones.beats import BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.methods import base as methods_base
from ssl_lightning.methods import load_method, load_tokenizer
from ssl_lightning.methods.base import CLASS_KEY
from ssl_lightning.methods.beats import (
    MaskedAudioModeling,
    masked_accuracy,
    masked_cross_entropy,
    scatter_visible,
)
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.tokenizers import (
    RandomProjectionTokenizer,
    SelfDistilledTokenizer,
    SelfDistilledTokenizerConfig,
)

SAMPLES = 16000  # 1 s: 98 fbank frames -> 6 x 8 = 48 patches; 36 masked, 12 visible
TINY = dict(
    embed_dim=16, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
    conv_pos=8, conv_pos_groups=4, relative_position_embedding=True, gru_rel_pos=True, deep_norm=True,
    dropout=0.0, attention_dropout=0.0,
)  # fmt: skip


def tiny_encoder() -> BEATsEncoder:
    return BEATsEncoder(BEATsEncoderConfig(**TINY))


def tiny_self_distilled() -> SelfDistilledTokenizer:
    """A 1-layer self-distilled tokenizer whose codebook one training-mode pass initialised (k-means)."""
    config = SelfDistilledTokenizerConfig(**{**TINY, "encoder_layers": 1}, quant_n=12, quant_dim=8)
    tokenizer = SelfDistilledTokenizer(config).train()
    with torch.no_grad():
        tokenizer(audio_batch(4, seed=9)["audio"])
    return tokenizer.eval()


def model(tokenizer=None, **kwargs) -> MaskedAudioModeling:
    tokenizer = tokenizer or RandomProjectionTokenizer(codebook_size=16, codebook_dim=8)
    optim = OptimizerConfig(lr=2e-3, weight_decay=0.0)
    return MaskedAudioModeling(tiny_encoder(), tokenizer, predictor_layers=1, optim=optim, **kwargs)


def audio_batch(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(SAMPLES) / 16000
    frequency = 200 * 2 ** (4 * torch.rand(batch, 1, generator=g))
    audio = 0.3 * torch.sin(2 * torch.pi * frequency * t * (1 + t)) + 0.02 * torch.randn(
        batch, SAMPLES, generator=g
    )
    return {"audio": audio, "padding_mask": torch.zeros(batch, SAMPLES, dtype=torch.bool)}


def trainer(tmp_path, steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=steps, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path, **kwargs,
    )  # fmt: skip


def loader(num: int = 4) -> DataLoader:
    return DataLoader(
        [{k: v[0] for k, v in audio_batch(1, seed=i).items()} for i in range(num)], batch_size=2
    )


def test_scatter_visible_places_rows_and_zeros():
    visible = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    placed = scatter_visible(visible, torch.tensor([[1, 3]]), 4)
    assert torch.equal(placed, torch.tensor([[[0.0, 0.0], [1.0, 2.0], [0.0, 0.0], [3.0, 4.0]]]))


def test_masked_cross_entropy_by_hand_and_blind_to_visible_positions():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0], [5.0, -5.0]]])
    labels = torch.tensor([[0, 1, 1]])
    mask = torch.tensor([[True, True, False]])
    expected = (torch.log(1 + torch.exp(torch.tensor(-2.0))) + torch.log(torch.tensor(2.0))) / 2
    torch.testing.assert_close(masked_cross_entropy(logits, labels, mask), expected)
    changed = logits.clone()
    changed[0, 2] = torch.tensor([-9.0, 9.0])
    torch.testing.assert_close(masked_cross_entropy(changed, labels, mask), expected)
    assert masked_accuracy(logits, labels, mask).item() == 0.5


def test_encoder_sees_only_the_visible_patches_and_the_predictor_zeros_elsewhere():
    method = model()
    seen = {}
    method.encoder.encoder.layers[0].register_forward_pre_hook(
        lambda m, args: seen.update(tokens=args[0].shape)
    )
    method.encoder.encoder.register_forward_pre_hook(lambda m, args: seen.update(keep_index=args[2]))
    method.encoder.encoder.register_forward_hook(lambda m, args, out: seen.update(visible=out))
    method.label_predictor.transformer.register_forward_pre_hook(lambda m, args: seen.update(x=args[0]))
    output = method(audio_batch(3), torch.Generator().manual_seed(0))
    assert seen["tokens"] == (3, 12, 32) and output.num_encoded == 12
    assert output.mask.shape == (3, 48) and output.mask.sum(dim=1).tolist() == [36, 36, 36]
    x, keep = seen["x"], seen["keep_index"]
    assert x.shape == (3, 48, 32)
    assert (x[output.mask] == 0).all()
    torch.testing.assert_close(x.gather(1, keep[..., None].expand(-1, -1, 32)), seen["visible"])
    assert (x.gather(1, keep[..., None].expand(-1, -1, 32)).abs().sum(-1) > 0).all()
    assert not output.mask.gather(1, keep).any()


def test_loss_is_eq4_at_the_masked_positions_only():
    method = model()
    output = method(audio_batch(2), torch.Generator().manual_seed(1))
    log_probs = output.logits.log_softmax(dim=-1).gather(-1, output.labels[..., None])[..., 0]
    torch.testing.assert_close(output.loss, -log_probs[output.mask].mean())
    assert output.labels.shape == (2, 48)
    torch.testing.assert_close(output.labels, method.tokenizer.extract_labels(audio_batch(2)["audio"]))


def test_padded_patches_are_left_out_of_the_loss():
    batch = audio_batch(2)
    batch["padding_mask"][1, 8000:] = True
    method = model()
    output = method(batch, torch.Generator().manual_seed(2))
    _, patch_padding = method.encoder.embed_patches(batch["audio"], batch["padding_mask"])
    assert patch_padding[1].any() and not (output.mask & patch_padding).any()
    assert output.mask[0].sum() == 36 and output.mask[1].sum() < 36


def test_tokenizer_is_frozen_and_stays_in_eval_mode_while_training(tmp_path):
    tokenizer = tiny_self_distilled()
    before = {k: v.clone() for k, v in tokenizer.state_dict().items()}
    method = model(tokenizer)
    assert not any(p.requires_grad for p in method.tokenizer.parameters())
    method.train()
    assert method.training and method.label_predictor.training and not method.tokenizer.training
    assert not any(m.training for m in method.tokenizer.modules())
    modes = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            modes.append((module.training, module.tokenizer.training))

    trainer(tmp_path, 2, callbacks=[Spy()]).fit(method, train_dataloaders=loader())
    assert modes == [(True, False), (True, False)]
    optimized = {id(p) for group in method.trainer.optimizers[0].param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in method.tokenizer.parameters()}
    assert all(torch.equal(before[k], v) for k, v in method.tokenizer.state_dict().items())


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    method = model()
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=2e-3)
    batch, losses = audio_batch(2), []
    for _ in range(15):
        loss = method(batch, torch.Generator().manual_seed(3)).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_resume_from_step_2_matches_4_uninterrupted_steps(tmp_path):
    L.seed_everything(0)
    uninterrupted = model()
    every_2 = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    trainer(tmp_path, 4, callbacks=[every_2]).fit(uninterrupted, train_dataloaders=loader())
    step_2 = tmp_path / "ckpt" / "epoch=0-step=2.ckpt"
    assert step_2.is_file()
    L.seed_everything(0)
    resumed = model()
    resume = trainer(tmp_path, 4, enable_checkpointing=False)
    resume.fit(resumed, train_dataloaders=loader(), ckpt_path=step_2, weights_only=False)
    assert resumed.global_step == 4
    for (name, a), (_, b) in zip(
        uninterrupted.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)
    at_step_2 = torch.load(step_2, weights_only=False)["state_dict"]["label_predictor.classifier.weight"]
    assert not torch.allclose(at_step_2, resumed.label_predictor.classifier.weight)


def test_checkpoint_restores_with_load_method_alone_without_the_tokenizer_file(tmp_path):
    tokenizer_file = tmp_path / "Tokenizer_iter2.pt"
    torch.save(tiny_self_distilled().to_official_checkpoint(), tokenizer_file)
    method = MaskedAudioModeling(tiny_encoder(), tokenizer_checkpoint=str(tokenizer_file), predictor_layers=1)
    assert isinstance(method.tokenizer, SelfDistilledTokenizer)
    fit = trainer(tmp_path, 1)
    fit.fit(method, train_dataloaders=loader(2))
    path = tmp_path / "mam.ckpt"
    fit.save_checkpoint(path)
    tokenizer_file.unlink()
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["hyper_parameters"]["tokenizer_checkpoint"] is None
    assert isinstance(checkpoint["hyper_parameters"]["tokenizer"], SelfDistilledTokenizer)
    assert checkpoint[CLASS_KEY] == "ssl_lightning.methods.beats.MaskedAudioModeling"
    restored = load_method(path)
    assert type(restored) is MaskedAudioModeling and not restored.tokenizer.training
    batch = audio_batch(2)
    for a, b in zip(
        restored.tokenizer.state_dict().values(), method.tokenizer.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    method.eval()
    torch.testing.assert_close(restored.eval().embed(batch), method.embed(batch))
    torch.testing.assert_close(
        restored.embed_sequence(batch), method.encoder(batch["audio"], batch["padding_mask"])[0]
    )
    assert restored.embed_sequence(batch).shape == (2, 48, 32) and restored.embed_dim == 32
    torch.testing.assert_close(
        restored(batch, torch.Generator().manual_seed(0)).loss,
        method(batch, torch.Generator().manual_seed(0)).loss,
    )


def test_resuming_continues_with_the_checkpoint_tokenizer(tmp_path):
    first = model()
    fit = trainer(tmp_path, 1)
    fit.fit(first, train_dataloaders=loader(2))
    fit.save_checkpoint(tmp_path / "mam.ckpt")
    other = model(RandomProjectionTokenizer(codebook_size=16, codebook_dim=8, seed=1))
    assert not torch.equal(other.tokenizer.codebook, first.tokenizer.codebook)
    trainer(tmp_path, 2).fit(
        other, train_dataloaders=loader(2), ckpt_path=tmp_path / "mam.ckpt", weights_only=False
    )
    assert torch.equal(other.tokenizer.codebook, first.tokenizer.codebook)


def test_load_tokenizer_reads_official_files_and_method_checkpoints(tmp_path):
    official = tiny_self_distilled()
    torch.save(official.to_official_checkpoint(), tmp_path / "official.pt")
    loaded = load_tokenizer(tmp_path / "official.pt")
    assert isinstance(loaded, SelfDistilledTokenizer) and not loaded.training
    assert all(
        torch.equal(a, b)
        for a, b in zip(loaded.state_dict().values(), official.state_dict().values(), strict=True)
    )
    method = model()
    fit = trainer(tmp_path, 1)
    fit.fit(method, train_dataloaders=loader(2))
    fit.save_checkpoint(tmp_path / "run.ckpt")
    from_ckpt = load_tokenizer(tmp_path / "run.ckpt")
    assert isinstance(from_ckpt, RandomProjectionTokenizer) and torch.equal(
        from_ckpt.codebook, method.tokenizer.codebook
    )


def test_load_tokenizer_says_which_stage_writes_a_missing_file(tmp_path):
    missing = tmp_path / "runs" / "beats" / "tokenizer_iter3plus" / "checkpoints" / "last.ckpt"
    with pytest.raises(
        FileNotFoundError, match=r"run `lightning fit --config recipes/beats_tokenizer_iter3plus.yaml`"
    ):
        load_tokenizer(missing)
    with pytest.raises(FileNotFoundError, match=r"recipes/beats_tokenizer_iter\*.yaml"):
        load_tokenizer(tmp_path / "nowhere.pt")


def test_a_method_checkpoint_without_a_tokenizer_is_rejected(tmp_path, tiny_encoder_cls):
    from ssl_lightning.methods import SupervisedClassifier

    classifier = SupervisedClassifier(tiny_encoder_cls(4), num_classes=2)
    checkpoint = {
        "state_dict": classifier.state_dict(), "hyper_parameters": dict(classifier.hparams),
        CLASS_KEY: "ssl_lightning.methods.SupervisedClassifier", "pytorch-lightning_version": L.__version__,
    }  # fmt: skip
    torch.save(checkpoint, tmp_path / "classifier.ckpt")
    with pytest.raises(ValueError, match="SupervisedClassifier checkpoint, which has no `tokenizer`"):
        load_tokenizer(tmp_path / "classifier.ckpt")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({}, ValueError, "exactly one of `tokenizer`"),
        (
            {"tokenizer": RandomProjectionTokenizer(), "tokenizer_checkpoint": "x.pt"},
            ValueError,
            "exactly one",
        ),
        ({"tokenizer": torch.nn.Linear(2, 2)}, TypeError, "has no extract_labels"),
        ({"tokenizer": RandomProjectionTokenizer(), "mask_ratio": 1.0}, ValueError, "mask_ratio must be in"),
        ({"tokenizer": RandomProjectionTokenizer(), "predictor_layers": 0}, ValueError, "predictor_layers"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, error, message):
    with pytest.raises(error, match=message):
        MaskedAudioModeling(tiny_encoder(), **kwargs)


def test_a_non_beats_encoder_is_rejected(tiny_encoder_cls):
    with pytest.raises(TypeError, match="needs a BEATsEncoder"):
        MaskedAudioModeling(tiny_encoder_cls(4), RandomProjectionTokenizer())


def test_a_tokenizer_with_another_patch_grid_is_rejected():
    method = model(RandomProjectionTokenizer(codebook_size=16, codebook_dim=8, patch_size=8))
    with pytest.raises(ValueError, match="tokenizer and encoder must use the same patch size"):
        method(audio_batch(2))


def test_cross_entropy_matches_torch_on_a_random_example():
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(2, 5, 7, generator=g), torch.randint(0, 7, (2, 5), generator=g)
    mask = torch.rand(2, 5, generator=g) > 0.4
    torch.testing.assert_close(
        masked_cross_entropy(logits, labels, mask), F.cross_entropy(logits[mask], labels[mask])
    )


@pytest.mark.slow
def test_cli_run_with_a_tokenizer_file_restores_without_it_and_resumes(tmp_path, monkeypatch):
    """`lightning fit` of beats_iter2 with an official tokenizer file: the checkpoint holds only plain
    values (resuming loads it with weights_only=True) and restores after the file is gone."""
    from pathlib import Path

    from ssl_lightning.cli import main

    recipes = Path(__file__).resolve().parents[2] / "recipes"
    monkeypatch.chdir(tmp_path)
    torch.save(tiny_self_distilled().to_official_checkpoint(), tmp_path / "Tokenizer_iter2.pt")
    configs = ["beats_iter2.yaml", "overlays/cpu_smoke.yaml", "overlays/tiny/BEATsEncoder.yaml"]
    args = ["fit"] + [arg for name in configs for arg in ("--config", str(recipes / name))]
    args += [
        "--model.init_args.predictor_layers", "1",
        "--model.init_args.tokenizer_checkpoint", "Tokenizer_iter2.pt",
        "--trainer.limit_val_batches", "0", "--trainer.enable_progress_bar", "false",
        "--data.init_args.batch_size", "4", "--data.init_args.split_sizes", '{"train": 16, "valid": 4}',
    ]  # fmt: skip
    main(args)
    last = tmp_path / "runs" / "beats" / "iter2" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)["hyper_parameters"]
    assert saved["tokenizer_checkpoint"] is None
    assert (
        saved["tokenizer"]["class_path"] == "ssl_lightning.tokenizers.beats_tokenizer.SelfDistilledTokenizer"
    )
    (tmp_path / "Tokenizer_iter2.pt").rename(tmp_path / "moved.pt")
    restored = load_method(last)
    assert isinstance(restored.tokenizer, SelfDistilledTokenizer)
    official = load_tokenizer(tmp_path / "moved.pt")
    batch = audio_batch(2)
    assert torch.equal(
        restored.tokenizer.extract_labels(batch["audio"]), official.extract_labels(batch["audio"])
    )
    resume = ["--model.init_args.tokenizer_checkpoint", "moved.pt", "--trainer.max_steps", "4"]
    main(args + resume + ["--trainer.limit_train_batches", "4", "--ckpt_path", str(last)])
    assert torch.load(last, weights_only=True)["global_step"] == 4


def test_compile_wraps_the_modules_of_the_training_step_once():
    method = model(compile=True)
    method.configure_model()
    method.configure_model()
    compiled = torch._dynamo.eval_frame.OptimizedModule
    assert isinstance(method.encoder.encoder, compiled) and isinstance(method.label_predictor, compiled)
    assert not isinstance(method.encoder.encoder._orig_mod, compiled)
    plain = model()
    plain.configure_model()
    assert not isinstance(plain.label_predictor, compiled) and not isinstance(plain.encoder.encoder, compiled)


def _eval_mode_warnings(method: MaskedAudioModeling, tmp_path) -> list[str]:
    """Lightning's warnings about modules in eval mode during a one-step fit (every warning shown,
    whatever pytest's filters say)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer(tmp_path, steps=1).fit(method, loader(2))
    return [str(w.message) for w in record if "in eval mode" in str(w.message)]


def test_the_frozen_tokenizer_stays_in_eval_mode_without_lightnings_warning(tmp_path, monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(methods_base, "rank_zero_info", said.append)
    method = model()
    assert _eval_mode_warnings(method, tmp_path) == []
    assert said == ["MaskedAudioModeling: tokenizer frozen by design (2 modules kept in eval mode)"]
    method.train()
    assert method.encoder.training and not any(m.training for m in method.tokenizer.modules())


def test_modules_in_eval_mode_beyond_the_frozen_ones_are_still_warned_about(tmp_path):
    method = model()
    method.label_predictor.eval()  # not declared frozen: Lightning's warning must stay
    assert len(_eval_mode_warnings(method, tmp_path)) == 1
