"""BEATs self-distilled tokenizer: labels equal to the official code's, no side effects, round trip."""

from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

from ssl_lightning.backbones.beats import BEATsClassifier, BEATsConfig, BEATsEncoder
from ssl_lightning.tokenizers import SelfDistilledTokenizer, SelfDistilledTokenizerConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beats"


SMALL = BEATsConfig(
    embed_dim=32, encoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=16,
    encoder_attention_heads=2, conv_pos=4, conv_pos_groups=2,
)  # fmt: skip


@pytest.fixture(scope="module")
def fixture() -> dict:
    """The official inputs and the tokenizer's checkpoint and labels (tests/fixtures/beats/README.md)."""
    inputs = torch.load(FIXTURES / "inputs.pt", weights_only=True)
    return {**inputs, **torch.load(FIXTURES / "tokenizer.pt", weights_only=True)}


@pytest.fixture
def tokenizer(fixture) -> SelfDistilledTokenizer:
    return SelfDistilledTokenizer.from_official_checkpoint(fixture["checkpoint"]).eval()


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


def test_labels_equal_the_official_labels(tokenizer, fixture):
    labels = tokenizer.extract_labels(fixture["waveform"], fixture["padding_mask"])
    assert labels.shape == (2, 96) and labels.dtype == torch.int64
    assert torch.equal(labels.flatten(), fixture["expected_labels"])
    assert torch.equal(tokenizer.extract_labels(fixture["waveform"]), labels)


def test_quantizer_input_matches_the_official_one(tokenizer, fixture):
    with torch.no_grad():
        features, _ = tokenizer.encoder(fixture["waveform"])
        assert_close(tokenizer.quantize_layer(features), fixture["quantize_input"], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_extract_labels_has_no_side_effects(tokenizer, fixture, mode):
    tokenizer.train(mode == "train")
    before = snapshot(tokenizer)
    labels = tokenizer.extract_labels(fixture["waveform"])
    after = tokenizer.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert not labels.requires_grad


def test_eval_forward_has_no_side_effects_and_returns_unit_codewords(tokenizer, fixture):
    before = snapshot(tokenizer)
    with torch.no_grad():
        output, mask = tokenizer(fixture["waveform"], fixture["padding_mask"])
    assert all(torch.equal(before[key], value) for key, value in tokenizer.state_dict().items())
    assert torch.equal(output.indices.flatten(), fixture["expected_labels"])
    assert_close(output.quantized.norm(dim=-1), torch.ones(2, 96))
    assert output.loss.ndim == 0 and mask.shape == (2, 96)


def test_train_forward_takes_an_ema_step(tokenizer, fixture):
    tokenizer.quantize.train()  # the encoder stays in eval mode (no dropout)
    codebook = tokenizer.quantize.embedding.weight.clone()
    statistics = tokenizer.quantize.cluster_size.clone()
    with torch.no_grad():
        output, _ = tokenizer(fixture["waveform"])
    assert torch.equal(output.indices.flatten(), fixture["expected_labels"])  # assigned before the update
    counts = torch.bincount(output.indices.flatten(), minlength=32).float()
    assert_close(tokenizer.quantize.cluster_size, 0.99 * statistics + 0.01 * counts)
    unused = counts == 0
    assert_close(tokenizer.quantize.embedding.weight[unused], codebook[unused])  # up to re-normalisation
    assert not torch.allclose(tokenizer.quantize.embedding.weight[~unused], codebook[~unused])


def test_checkpoint_round_trip(tokenizer, fixture, tmp_path):
    checkpoint = tokenizer.to_official_checkpoint()
    official = fixture["checkpoint"]
    assert set(checkpoint["model"]) == set(official["model"])
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, official["model"][key]), key
    assert checkpoint["cfg"] == {**official["cfg"], "layer_wise_gradient_decay_ratio": 1.0}
    torch.save(checkpoint, tmp_path / "tokenizer.pt")
    reloaded = SelfDistilledTokenizer.from_official_checkpoint(tmp_path / "tokenizer.pt").eval()
    assert torch.equal(reloaded.extract_labels(fixture["waveform"]).flatten(), fixture["expected_labels"])


def test_loaders_refuse_the_wrong_kind_of_checkpoint(fixture):
    with pytest.raises(ValueError, match="tokenizer checkpoint.*SelfDistilledTokenizer"):
        BEATsEncoder.from_official_checkpoint(fixture["checkpoint"])
    with pytest.raises(ValueError, match="not a tokenizer"):
        SelfDistilledTokenizer.from_official_checkpoint(BEATsEncoder(SMALL).to_official_checkpoint())
    broken = dict(fixture["checkpoint"]["model"])
    del broken["quantize.embedding.initted"]
    with pytest.raises(ValueError, match="missing \\['quantize.embedding.initted'\\]"):
        SelfDistilledTokenizer.from_official_checkpoint(
            {"cfg": fixture["checkpoint"]["cfg"], "model": broken}
        )
    assert not hasattr(BEATsClassifier, "extract_labels")


def test_fresh_tokenizer_refuses_to_quantize_with_an_uninitialised_codebook():
    config = SelfDistilledTokenizerConfig(
        embed_dim=32, encoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=16,
        encoder_attention_heads=2, conv_pos=4, conv_pos_groups=2, quant_n=8, quant_dim=4,
    )  # fmt: skip
    tokenizer = SelfDistilledTokenizer(config).eval()
    with pytest.raises(RuntimeError, match="codebook is not initialised"):
        tokenizer.extract_labels(torch.randn(1, 4000) * 0.1)
    with pytest.raises(ValueError, match="quant_n must be a positive int"):
        SelfDistilledTokenizerConfig(quant_n=0)
