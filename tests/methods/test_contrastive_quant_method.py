"""Contrastive Quant on SimCLR and BYOL: which branches run at which precision and feed which term,
precision sampling, quantizing once, full-precision evaluation, straight-through gradients; and a
compiled (`compile=True`) training step of the same tiny SimCLR."""

import pytest
import torch
from einops import rearrange
from torch import nn

from ssl_lightning.augment import ImageViews
from ssl_lightning.cli import main
from ssl_lightning.methods import BYOL, ContrastiveQuantConfig, SimCLR, load_method
from ssl_lightning.methods.two_view import TwoViewMethod
from ssl_lightning.nn.losses import byol_loss
from ssl_lightning.nn.quantization import RANGE_BUFFERS, QuantizerConfig, QuantLayer
from ssl_lightning.nn.quantized_model import precision, quant_layers, set_precision

Q1, Q2 = 3, 5
BATCH = 6


pytestmark = pytest.mark.usefixtures("single_thread")


class TinyConvEncoder(nn.Module):
    """`images[B, 3, 8, 8] -> (tokens[B, 16, 8], None)`: stride-2 conv, ReLU, per-token linear."""

    embed_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 8)

    def forward(self, images, padding_mask=None):
        return self.fc(rearrange(self.conv(images).relu(), "b c h w -> b (h w) c")), None


def _simclr(quant: ContrastiveQuantConfig | None, **kwargs) -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(TinyConvEncoder(), projection_dim=4, hidden_dim=16, temperature=0.5, quant=quant, **kwargs)


def _byol(quant: ContrastiveQuantConfig | None) -> BYOL:
    torch.manual_seed(0)
    return BYOL(TinyConvEncoder(), None, 4, 16, predictor_hidden_dim=16, quant=quant)


def _images(batch: int = BATCH) -> torch.Tensor:
    return torch.rand(batch, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def _record_encoder_calls(model: nn.Module, encoder: nn.Module) -> list[tuple[int | None, torch.Tensor]]:
    """(precision of the encoder's conv, input) of every call of `encoder`."""
    calls = []
    encoder.register_forward_pre_hook(lambda module, args: calls.append((module.conv.bits, args[0].clone())))
    return calls


def _views(model, images, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return model.views(images), model.views(images)


def _branches(model, batches: dict[int, torch.Tensor]) -> dict[int, torch.Tensor]:
    """The model's output on each precision's batch, as one pass: {q: output}."""
    outputs = {}
    for q, batch in batches.items():
        with precision(model, q):
            outputs[q] = model(batch)
    return outputs


@pytest.mark.parametrize("objective", ["cq_a", "cq_b", "cq_c", "cq_quant"])
def test_simclr_objective_runs_its_branches_at_q1_and_q2(objective):
    model = _simclr(ContrastiveQuantConfig(objective))
    images = _images()
    calls = _record_encoder_calls(model, model.encoder)
    torch.manual_seed(7)
    model.contrastive_quant_loss(images, Q1, Q2)
    v1, v2 = _views(model, images, 7)
    expected_calls = {
        "cq_a": [(Q1, v1), (Q2, v2)],  # NCE(F_q1(Aug1 x), F_q2(Aug2 x)): one pass of B per precision
        "cq_quant": [(Q1, images), (Q2, images)],  # NCE(F_q1(x), F_q2(x)): no augmentation
    }.get(objective, [(Q1, torch.cat([v1, v2])), (Q2, torch.cat([v1, v2]))])  # both views, 2B a pass
    assert [bits for bits, _ in calls] == [bits for bits, _ in expected_calls]
    for (_, seen), (_, wanted) in zip(calls, expected_calls, strict=True):
        torch.testing.assert_close(seen, wanted)
    assert all(layer.bits is None for layer in quant_layers(model))


class ShiftViews(nn.Module):
    """View k (k = 1, 2, ... in call order) of x is x + 0.1 k: views known by hand."""

    domain = "image"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x, generator=None):
        self.calls += 1
        return x + 0.1 * self.calls


class IdentityLinearEncoder(nn.Module):
    """One `nn.Linear(1, 1)` of weight 1 and no bias: quantized, the network is its input's quantizer."""

    embed_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(1, 1, bias=False)
        nn.init.ones_(self.fc.weight)


class L1Branches(TwoViewMethod):
    """Branch output = the encoder's linear layer on `[N, 1]` inputs; NCE(a, b) = sum |a - b|."""

    def forward(self, views):
        return self.encoder.fc(views)

    def pair_loss(self, a, b):
        return (a - b).abs().sum()


# x = (0, 0.2, 0.6), views v1 = x + 0.1 = (0.1, 0.3, 0.7), v2 = x + 0.2 = (0.2, 0.4, 0.8), q1 = 1, q2 = 3
# bits; CPT's quantizer, one range per pass: Q(a) = min + S round((a - min) / S), S = range / (2^q - 1).
# CQ-B / CQ-C pass [v1, v2] (min 0.1, range 0.7): 1 bit, S = 0.7: f1 = (.1, .1, .8), f1+ = (.1, .1, .8);
#   3 bits, S = 0.1: f2 = (.1, .3, .7), f2+ = (.2, .4, .8) (exact). NCE(f1, f1+) = 0,
#   NCE(f2, f2+) = 0.3, NCE(f1, f2) = 0 + .2 + .1 = 0.3, NCE(f1+, f2+) = .1 + .3 + 0 = 0.4.
#   CQ-B (eq. 7) = 0 + 0.3; CQ-C (eq. 8) = 0 + 0.3 + 0.3 + 0.4 = 1.0.
# CQ-A (eq. 4): v1 at 1 bit (min .1, S = .6): (.1, .1, .7); v2 at 3 bits (min .2, S = .6 / 7):
#   (.2, .2 + 1.2 / 7, .8); NCE = .1 + (.1 + 1.2 / 7) + .1 = 0.3 + 1.2 / 7.
# CQ-quant (sec. 4.5): x at 1 bit (S = .6): (0, 0, .6); at 3 bits (S = .6 / 7): (0, 1.2 / 7, .6);
#   NCE = 1.2 / 7.
@pytest.mark.parametrize(
    "objective, expected",
    [("cq_a", 0.3 + 1.2 / 7), ("cq_b", 0.3), ("cq_c", 1.0), ("cq_quant", 1.2 / 7)],
)
def test_objective_worked_example_from_the_papers_equations(objective, expected):
    model = L1Branches(IdentityLinearEncoder(), ShiftViews(), ContrastiveQuantConfig(objective))
    x = torch.tensor([[0.0], [0.2], [0.6]])
    loss = model.contrastive_quant_loss(x, 1, 3)
    assert loss.item() == pytest.approx(expected, abs=1e-6), f"{objective}: {loss.item()} != {expected}"


def test_byol_cq_a_predicts_the_full_precision_target_unless_quantize_target():
    images = _images()
    for quantize_target, target_bits in [(False, [None, None]), (True, [Q1, Q2])]:
        model = _byol(ContrastiveQuantConfig("cq_a", quantize_target=quantize_target))
        target_calls = _record_encoder_calls(model, model.target.module["encoder"])
        torch.manual_seed(3)
        loss = model.contrastive_quant_loss(images, Q1, Q2)
        assert [bits for bits, _ in target_calls] == target_bits
        v1, v2 = _views(model, images, 3)
        out = _branches(model, {Q1: v1, Q2: v2})  # [B, 2, D]: (online prediction, target projection)
        (p1, z1), (p2, z2) = out[Q1].unbind(1), out[Q2].unbind(1)
        torch.testing.assert_close(loss, byol_loss(p1, z2) + byol_loss(p2, z1))
        with torch.no_grad():
            projection = model.projector(model.encoder(v2)[0].mean(1))  # the target is still a copy
        if quantize_target:
            assert not torch.allclose(z2, projection, atol=1e-4)
        else:
            torch.testing.assert_close(z2, projection)


def test_precisions_are_drawn_per_step_uniformly_from_the_set_and_identically_for_a_step():
    config = ContrastiveQuantConfig(precision_set="6-16")
    draws = [config.precisions_at(step) for step in range(400)]
    assert draws == [config.precisions_at(step) for step in range(400)]
    for side in (0, 1):
        counts = torch.bincount(torch.tensor([d[side] for d in draws]), minlength=17)[6:]
        assert counts.sum() == 400 and counts.min() >= 15  # all 11 precisions, ~36 each
    assert 0 < sum(q1 == q2 for q1, q2 in draws) < 100  # independent draws: equal about 1 in 11
    assert [ContrastiveQuantConfig(seed=1).precisions_at(s) for s in range(20)] != draws[:20]
    distinct = ContrastiveQuantConfig(precision_set="4-5", distinct=True)
    assert {distinct.precisions_at(step) for step in range(50)} == {(4, 5), (5, 4)}


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="quant.objective"):
        ContrastiveQuantConfig("cq_d")
    with pytest.raises(ValueError, match="low <= high"):
        ContrastiveQuantConfig(precision_set="16-4")
    with pytest.raises(ValueError, match="'6-16'"):
        ContrastiveQuantConfig(precision_set="six")
    with pytest.raises(ValueError, match="distinct"):
        ContrastiveQuantConfig(precision_set="8", distinct=True)
    with pytest.raises(RuntimeError, match="without quant"):
        _simclr(None).contrastive_quant_loss(_images(), Q1, Q2)


def test_the_encoder_is_quantized_once_and_embeds_at_full_precision_unless_told():
    plain, model = _simclr(None), _simclr(ContrastiveQuantConfig())
    assert all(isinstance(m, QuantLayer) for m in (model.encoder.conv, model.encoder.fc))
    assert not quant_layers(model.projector)
    # the quant layers add their running activation range (CPT's QuantMeasure buffers)
    ranges = {f"encoder.{layer}.{name}" for layer in ("conv", "fc") for name in RANGE_BUFFERS}
    assert model.state_dict().keys() == plain.state_dict().keys() | ranges
    model.load_state_dict(plain.state_dict())
    batch = {"image": _images()}
    plain.eval(), model.eval()
    torch.testing.assert_close(model.embed(batch), plain.embed(batch), rtol=0, atol=0)
    set_precision(model.encoder, 4)
    assert not torch.allclose(model.embed(batch), plain.embed(batch), atol=1e-3)
    set_precision(model.encoder, None)
    heads = _simclr(ContrastiveQuantConfig(quantize_heads=True, skip_first=True))
    assert len(quant_layers(heads.projector)) == 2
    assert not isinstance(heads.encoder.conv, QuantLayer) and isinstance(heads.encoder.fc, QuantLayer)
    floor = _simclr(ContrastiveQuantConfig(quantizer=QuantizerConfig(rounding="floor", zero_point=False)))
    assert floor.encoder.fc.config.rounding == "floor"
    byol = _byol(ContrastiveQuantConfig(quantize_heads=True))
    assert len(quant_layers(byol.predictor)) == 2 and len(quant_layers(byol.target)) == 4


def test_gradients_flow_through_the_straight_through_quantizer_and_training_lowers_the_loss():
    # crop and flip only: the test is about the quantizer's gradients, not the views' strength
    light_views = ImageViews(jitter_p=0.0, grayscale_p=0.0)
    model = _simclr(ContrastiveQuantConfig("cq_c", quantize_heads=True), views=light_views)
    images = _images(16)
    model.contrastive_quant_loss(images, 4, 4).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(20):
        torch.manual_seed(step % 2)
        loss = model.contrastive_quant_loss(images, *model.quant.precisions_at(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3])


@pytest.mark.parametrize("method", ["simclr", "byol"])
def test_trains_in_lightning_logs_the_step_precisions_and_restores(tmp_path, quiet_trainer, method):
    quant = ContrastiveQuantConfig("cq_c", precision_set="4-16")
    model = _simclr(quant) if method == "simclr" else _byol(quant)
    data = torch.utils.data.DataLoader([{"image": image} for image in _images(8)], batch_size=4)
    trainer = quiet_trainer(max_steps=2)
    trainer.fit(model, train_dataloaders=data, val_dataloaders=data)
    metrics = trainer.callback_metrics
    assert (metrics["train/q1"].item(), metrics["train/q2"].item()) == quant.precisions_at(1)
    assert torch.isfinite(metrics["val/loss"]) and torch.isfinite(metrics["train/loss"])
    assert all(layer.bits is None for layer in quant_layers(model))
    trainer.save_checkpoint(tmp_path / "cq.ckpt")
    restored = load_method(tmp_path / "cq.ckpt").eval()
    assert restored.quant == quant and isinstance(restored.encoder.conv, QuantLayer)
    batch = {"image": _images(4)}
    torch.testing.assert_close(restored.embed(batch), model.eval().embed(batch))


def test_the_cli_takes_a_quant_block(capsys):
    recipe = "recipes/simclr_rq_image.yaml"
    with pytest.raises(SystemExit):
        main(
            [
                "fit",
                "--config",
                recipe,
                "--model.quant.objective=cq_a",
                "--model.quant.precision_set=8-16",
                "--print_config",
            ]
        )
    printed = capsys.readouterr().out
    assert "objective: cq_a" in printed and "precision_set: 8-16" in printed


def test_a_compiled_step_fits_with_finite_loss_and_updates_the_weights(quiet_trainer):
    """`compile: true` end to end on CPU: Lightning fits 3 steps through the torch.compile'd encoder."""
    model = _simclr(None, views=ImageViews(jitter_p=0.0, grayscale_p=0.0), compile=True)
    before = {name: p.detach().clone() for name, p in model.encoder.named_parameters()}
    data = torch.utils.data.DataLoader([{"image": image} for image in _images(16)], batch_size=8)
    trainer = quiet_trainer(max_steps=3)
    trainer.fit(model, train_dataloaders=data)
    assert isinstance(model.encoder, torch._dynamo.eval_frame.OptimizedModule), "the encoder was not compiled"
    assert trainer.global_step == 3
    loss = trainer.callback_metrics["train/loss"]
    assert torch.isfinite(loss), f"compiled step gave loss {loss}"
    after = dict(model.encoder._orig_mod.named_parameters())
    unchanged = [name for name, value in before.items() if torch.equal(after[name], value)]
    assert not unchanged, f"weights not updated by the compiled steps: {unchanged}"
