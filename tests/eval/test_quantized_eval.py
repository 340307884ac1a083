import logging

import lightning as L
import pytest
import torch
from torch import nn

from ssl_lightning.data import DigitsDataModule
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.eval.quantized import (
    FixedPrecision,
    evaluate_contrastive_quant,
    finetune_eval,
    fix_precision,
    linear_eval,
    method_at_precision,
    precision_name,
)
from ssl_lightning.methods import FrozenEncoder, SupervisedClassifier
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.quantization import RANGE_BUFFERS, QuantConv2d, QuantLinear
from ssl_lightning.nn.quantized_model import has_running_ranges, quant_layers

OPTIM = OptimizerConfig(name="adamw", lr=1e-2, weight_decay=0.0)
PROBE = ProbeConfig(max_steps=200, warmup_steps=20, eval_every=50)


class TinyImageEncoder(nn.Module):
    """`images[B, 3, 8, 8] -> (features[B, 1, dim], None)`: a stride-2 conv, then a linear layer."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__()
        self.embed_dim = dim
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(128, dim), nn.ReLU()
        )

    def forward(self, images, padding_mask=None):
        return self.net(images)[:, None], None


@pytest.fixture(autouse=True)
def quiet_single_threaded():
    """Quiet trainers, one torch thread: these models are tiny, and threads fight on a busy machine."""
    logger = logging.getLogger("lightning.pytorch")
    level, threads = logger.level, torch.get_num_threads()
    logger.setLevel(logging.WARNING)
    torch.set_num_threads(1)
    yield
    logger.setLevel(level)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    datamodule = DigitsDataModule(batch_size=64, image_size=8, seed=0)
    datamodule.setup()
    return datamodule


def _encoder(seed: int = 0) -> TinyImageEncoder:
    torch.manual_seed(seed)
    return TinyImageEncoder()


def test_precision_names_and_fix_precision():
    assert [precision_name(b) for b in (None, 32, 8, 4)] == ["FP", "FP", "8-bit", "4-bit"]
    encoder = _encoder()
    assert fix_precision(encoder, None) is encoder and not quant_layers(encoder)
    weight = encoder.net[0].weight
    quantized = fix_precision(encoder, 4)
    assert isinstance(quantized.net[0], QuantConv2d) and isinstance(quantized.net[3], QuantLinear)
    assert quantized.net[0].weight is weight and [layer.bits for layer in quant_layers(quantized)] == [4, 4]
    again = fix_precision(quantized, 6, skip_first=True)  # already quantized: only the precision changes
    assert again.net[0] is quantized.net[0] and [layer.bits for layer in quant_layers(again)] == [6, 6]
    assert [layer.bits for layer in quant_layers(fix_precision(_encoder(), 4, skip_first=True))] == [4]
    with pytest.raises(ValueError, match="bits"):
        fix_precision(_encoder(), 0)


def test_quantized_features_differ_at_4_bits_and_stay_close_at_8(digits):
    method = FrozenEncoder(_encoder())
    batch = next(iter(digits.subclip_dataloader("test")))
    with torch.no_grad():
        full = method.embed(batch)
        errors = {}
        for bits in (8, 4):
            quantized = method_at_precision(method, bits)
            assert quantized is not method and quant_layers(quantized.encoder)
            errors[bits] = ((quantized.embed(batch) - full).norm() / full.norm()).item()
        assert torch.equal(method.embed(batch), full)
    assert not quant_layers(method.encoder)  # the evaluated method is left unquantized
    assert method_at_precision(method, None) is method
    assert errors[8] < 0.02
    assert errors[4] > 0.05 and errors[4] > 5 * errors[8]


def test_fixed_precision_callback_quantizes_the_encoder_for_training(digits):
    L.seed_everything(0, verbose=False)
    model = SupervisedClassifier(_encoder(), num_classes=10, label_type="single", optim=OPTIM)
    keys = set(model.state_dict())
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        callbacks=[FixedPrecision(4)],
    )
    trainer.fit(model, datamodule=digits)
    assert [layer.bits for layer in quant_layers(model.encoder)] == [4, 4]
    ranges = {f"encoder.net.{i}.{name}" for i in (0, 3) for name in RANGE_BUFFERS}
    assert set(model.state_dict()) == keys | ranges
    assert all(layer.range_updates.item() == 2 for layer in quant_layers(model.encoder))  # one per step
    batch = next(iter(digits.test_dataloader()))
    with torch.no_grad():
        quantized = model(batch)
        fix_precision(model.encoder, None)
        assert not torch.allclose(model(batch), quantized)
    with pytest.raises(TypeError, match="no encoder"):
        FixedPrecision(4).setup(trainer, L.LightningModule(), "fit")


def test_linear_eval_at_each_precision_and_fraction(digits):
    results = linear_eval(
        FrozenEncoder(_encoder()), digits, bits=(None, 4), fractions=(None, 0.1), probe=PROBE, device="cpu"
    )
    assert [(r.task, r.model) for r in results] == [
        ("linear eval", "FP"),
        ("linear eval 10% labels", "FP"),
        ("linear eval", "4-bit"),
        ("linear eval 10% labels", "4-bit"),
    ]
    assert [r.num_train for r in results] == [1257, 127, 1257, 127]
    labelled = digits.with_label_fraction(0.1)
    labelled.setup()
    assert len(labelled.split_indices["train"]) == 127  # the datamodule's own 10% subset
    assert all(r.value > 0.3 and r.num_test == 270 for r in results)  # chance: 0.1
    assert all(r.extra["best_step"] is not None for r in results)  # digits has a valid split
    again = linear_eval(
        FrozenEncoder(_encoder()), digits, bits=(4,), fractions=(0.1,), probe=PROBE, device="cpu"
    )
    assert again[0].value == results[3].value
    with pytest.raises(ValueError, match="label_fraction=None"):
        linear_eval(FrozenEncoder(_encoder()), labelled)


def test_linear_eval_measures_missing_ranges_so_features_do_not_depend_on_the_batch(digits, monkeypatch):
    measured = []
    original = linear_eval.__globals__["extract_features"]

    def record(embed, loader, device):
        features = original(embed, loader, device)
        measured.append(has_running_ranges(embed.__self__.encoder))
        if len(measured) == 1:  # the measuring pass: its inputs pass unquantized
            return features
        images = next(iter(loader))["image"]
        with torch.no_grad():  # the first image alone and beside nine-times brighter ones
            alone = embed({"image": images[:1]})
            together = embed({"image": torch.cat([images[:1], images[1:] * 10])})[:1]
        torch.testing.assert_close(alone, together, rtol=0, atol=1e-6)  # 1e-6: float sums only
        return features

    monkeypatch.setitem(linear_eval.__globals__, "extract_features", record)
    linear_eval(FrozenEncoder(_encoder()), digits, bits=(4,), probe=PROBE, device="cpu")
    assert measured[0], "the train split was not used to measure the running activation ranges"
    assert all(measured) and len(measured) == 4  # measure on train, then train, valid, test


def test_finetune_table_is_deterministic_and_beats_chance(digits, tmp_path):
    method = FrozenEncoder(_encoder())  # frozen for probing; the fine-tuned copies are trainable
    kwargs = {"fractions": (0.1, 0.01), "probe": PROBE, "optim": OPTIM, "max_epochs": None, "max_steps": 30}
    results = evaluate_contrastive_quant(method, digits, tmp_path, name="tiny", device="cpu", **kwargs)
    table = {(r.task, r.model): r.value for r in results}
    assert list(table) == [
        ("fine-tune 10% labels", "FP"),
        ("fine-tune 10% labels", "4-bit"),
        ("fine-tune 1% labels", "FP"),
        ("fine-tune 1% labels", "4-bit"),
        ("linear eval", "FP"),
        ("linear eval", "4-bit"),
    ]
    assert table["fine-tune 10% labels", "FP"] > 0.6
    assert table["fine-tune 10% labels", "4-bit"] > 0.6
    assert min(table.values()) > 0.2
    assert [r.num_train for r in results[:4]] == [127, 127, 10, 10]
    assert all(r.extra["steps"] == 30 for r in results[:4])
    markdown = (tmp_path / "results.md").read_text()
    assert "| task | metric | FP | 4-bit |" in markdown and "| fine-tune 1% labels | accuracy |" in markdown
    again = finetune_eval(
        method.encoder, digits, (0.1,), (4,), OPTIM, max_epochs=None, max_steps=30, accelerator="cpu"
    )
    assert again[0].value == table["fine-tune 10% labels", "4-bit"]
