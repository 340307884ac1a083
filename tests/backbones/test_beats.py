"""BEATs encoder and classifier: parity with the official code's outputs, checkpoint round trips,
visible-token encoding and the backbone contract."""

import dataclasses
from pathlib import Path

import pytest
import torch
from timm.models import group_parameters
from torch.testing import assert_close

from ssl_lightning.backbones.beats import (
    BEATsClassifier,
    BEATsConfig,
    BEATsEncoder,
    reduce_padding_mask,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beats"
TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}


def load_fixture(name: str) -> dict:
    """The official inputs and the `name` model's checkpoint and outputs (tests/fixtures/beats/README.md)."""
    inputs = torch.load(FIXTURES / "inputs.pt", weights_only=True)
    return {**inputs, **torch.load(FIXTURES / f"{name}.pt", weights_only=True)}


@pytest.fixture(scope="module")
def encoder_fixture() -> dict:
    return load_fixture("encoder")


@pytest.fixture(scope="module")
def finetuned_fixture() -> dict:
    return load_fixture("finetuned")


def tiny_config(**overrides) -> BEATsConfig:
    """A 2-layer, 32-wide BEATs with every feature of the released models switched on."""
    fields = dict(
        embed_dim=64,
        encoder_layers=2,
        encoder_embed_dim=32,
        encoder_ffn_embed_dim=48,
        encoder_attention_heads=4,
        conv_pos=16,
        conv_pos_groups=4,
        deep_norm=True,
        relative_position_embedding=True,
        gru_rel_pos=True,
        max_distance=800,
    )
    return BEATsConfig(**{**fields, **overrides})


def test_fbank_matches_the_official_preprocess(encoder_fixture):
    encoder = BEATsEncoder(tiny_config())
    assert_close(encoder.preprocess(encoder_fixture["waveform"]), encoder_fixture["fbank"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("fused_attn", [True, False], ids=["sdpa", "official_op_order"])
def test_features_match_the_official_encoder(encoder_fixture, fused_attn):
    fx = encoder_fixture
    encoder = BEATsEncoder.from_official_checkpoint(fx["checkpoint"], fused_attn=fused_attn).eval()
    with torch.no_grad():
        features, mask = encoder.extract_features(fx["waveform"], fx["padding_mask"])
        features_no_mask, no_mask = encoder.extract_features(fx["waveform"])
        padded, padded_mask = encoder.extract_features(fx["waveform_padded"], fx["padding_mask_padded"])
    assert features.shape == (2, 96, 96)
    assert_close(features, fx["expected_features"], **TOLERANCE)
    assert torch.equal(mask, fx["expected_padding_mask"])
    assert torch.equal(features_no_mask, features) and no_mask is None
    assert_close(padded, fx["expected_features_padded"], **TOLERANCE)
    assert torch.equal(padded_mask, fx["expected_padding_mask_padded"])


def test_padding_mask_follows_the_official_proportional_mapping(encoder_fixture):
    mask = encoder_fixture["padding_mask_padded"]  # item 1: samples 24000..31999 padded
    frames = reduce_padding_mask(mask, 198)  # 32000 // 198 = 161 samples per frame, last 122 dropped
    assert frames[1].nonzero().flatten().tolist() == list(range(150, 198))
    patches = reduce_padding_mask(frames, 96)
    # two consecutive frames per patch index, ignoring the time-major 12 x 8 patch layout
    assert patches[1].nonzero().flatten().tolist() == list(range(75, 96))
    assert not patches[0].any()


def test_classifier_matches_the_official_finetuned_model(finetuned_fixture):
    fx = finetuned_fixture
    model = BEATsClassifier.from_official_checkpoint(fx["checkpoint"]).eval()
    assert model.label_dict == fx["checkpoint"]["label_dict"]
    with torch.no_grad():
        for suffix in ("", "_padded"):
            waveform, mask = fx[f"waveform{suffix}"], fx[f"padding_mask{suffix}"]
            assert_close(model(waveform, mask), fx[f"expected_logits{suffix}"], **TOLERANCE)
            assert_close(model.predict_proba(waveform, mask), fx[f"expected_probs{suffix}"], **TOLERANCE)
            frame_logits, frame_mask = model.frame_logits(waveform, mask)
            # the fixture head weight is x20, which amplifies the ~2e-6 feature differences
            assert_close(frame_logits, fx[f"expected_frame_logits{suffix}"], atol=5e-5, rtol=5e-5)
            assert torch.equal(frame_mask, fx[f"expected_padding_mask{suffix}"])


def test_classifier_pools_only_unpadded_patches(finetuned_fixture):
    fx = finetuned_fixture
    model = BEATsClassifier.from_official_checkpoint(fx["checkpoint"]).eval()
    with torch.no_grad():
        frame_logits, mask = model.frame_logits(fx["waveform_padded"], fx["padding_mask_padded"])
        logits = model(fx["waveform_padded"], fx["padding_mask_padded"])
    assert_close(logits[1], frame_logits[1, :75].mean(dim=0))
    assert_close(logits[0], frame_logits[0].mean(dim=0))


def test_encoder_checkpoint_round_trip(encoder_fixture, tmp_path):
    fx = encoder_fixture
    encoder = BEATsEncoder.from_official_checkpoint(fx["checkpoint"]).eval()
    checkpoint = encoder.to_official_checkpoint()
    assert checkpoint["cfg"] == fx["checkpoint"]["cfg"]
    official = fx["checkpoint"]["model"]
    assert set(checkpoint["model"]) == set(official)
    for key, value in checkpoint["model"].items():
        assert torch.equal(value, official[key]), key
    torch.save(checkpoint, tmp_path / "beats.pt")
    reloaded = BEATsEncoder.from_official_checkpoint(tmp_path / "beats.pt").eval()
    with torch.no_grad():
        assert torch.equal(reloaded(fx["waveform"])[0], encoder(fx["waveform"])[0])


def test_classifier_checkpoint_round_trip(finetuned_fixture):
    fx = finetuned_fixture
    model = BEATsClassifier.from_official_checkpoint(fx["checkpoint"]).eval()
    checkpoint = model.to_official_checkpoint()
    assert checkpoint["cfg"] == fx["checkpoint"]["cfg"]
    assert checkpoint["label_dict"] == fx["checkpoint"]["label_dict"]
    assert set(checkpoint["model"]) == set(fx["checkpoint"]["model"])
    reloaded = BEATsClassifier.from_official_checkpoint(checkpoint).eval()
    with torch.no_grad():
        assert torch.equal(reloaded(fx["waveform"]), model(fx["waveform"]))


def test_glu_and_pre_ln_configs_round_trip_with_official_key_names():
    config = tiny_config(activation_fn="glu", deep_norm=False, layer_norm_first=True, conv_bias=True)
    encoder = BEATsEncoder(config).eval()
    checkpoint = encoder.to_official_checkpoint()
    assert checkpoint["model"]["encoder.layers.1.fc1.linear.weight"].shape == (96, 32)
    assert "patch_embedding.bias" in checkpoint["model"]
    reloaded = BEATsEncoder.from_official_checkpoint(checkpoint).eval()
    waveform = torch.randn(2, 8000) * 0.1
    with torch.no_grad():
        assert torch.equal(reloaded(waveform)[0], encoder(waveform)[0])


def test_relative_table_is_stored_once_per_layer_and_the_last_copy_wins_on_load():
    encoder = BEATsEncoder(tiny_config())
    checkpoint = encoder.to_official_checkpoint()
    copies = [
        checkpoint["model"][f"encoder.layers.{i}.self_attn.relative_attention_bias.weight"] for i in (0, 1)
    ]
    assert torch.equal(copies[0], encoder.encoder.relative_position.weight)
    assert torch.equal(copies[1], copies[0])
    last = torch.randn_like(copies[1])
    checkpoint["model"]["encoder.layers.1.self_attn.relative_attention_bias.weight"] = last
    with pytest.warns(UserWarning, match="copies of the shared relative position table differ"):
        reloaded = BEATsEncoder.from_official_checkpoint(checkpoint)
    assert torch.equal(reloaded.encoder.relative_position.weight, last)


def test_loading_errors_name_the_problem(tmp_path):
    checkpoint = BEATsEncoder(tiny_config()).to_official_checkpoint()
    with pytest.raises(ValueError, match="missing keys \\['encoder.layer_norm.bias'\\]"):
        broken = dict(checkpoint["model"])
        del broken["encoder.layer_norm.bias"]
        BEATsEncoder.from_official_checkpoint({"cfg": checkpoint["cfg"], "model": broken})
    with pytest.raises(ValueError, match="missing keys \\[.encoder.layers.2"):
        BEATsEncoder.from_official_checkpoint(
            {**checkpoint, "cfg": {**checkpoint["cfg"], "encoder_layers": 3}}
        )
    with pytest.raises(ValueError, match="expected a dict with 'cfg' and 'model'"):
        BEATsEncoder.from_official_checkpoint({"state_dict": checkpoint["model"]})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BEATsEncoder.from_official_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="weights_only=True"):
        BEATsEncoder.from_official_checkpoint(tmp_path / "garbage.pt")


def test_finetuned_and_pretrained_checkpoints_point_to_the_right_class():
    classifier = BEATsClassifier(tiny_config(predictor_class=3))
    with pytest.raises(ValueError, match="BEATsClassifier.from_official_checkpoint"):
        BEATsEncoder.from_official_checkpoint(classifier.to_official_checkpoint())
    with pytest.raises(ValueError, match="BEATsEncoder.from_official_checkpoint"):
        BEATsClassifier.from_official_checkpoint(BEATsEncoder(tiny_config()).to_official_checkpoint())


def test_config_from_dict_validates_keys_and_values():
    cfg = tiny_config().to_dict()
    assert BEATsConfig.from_dict(cfg) == tiny_config()
    with pytest.raises(ValueError, match="no field\\(s\\) \\['encoder_layer'\\]"):
        BEATsConfig.from_dict({**cfg, "encoder_layer": 3}, strict=True)
    with pytest.warns(UserWarning, match="Ignoring them"):
        assert BEATsConfig.from_dict({**cfg, "extra_key": 1}) == tiny_config()
    with pytest.raises(ValueError, match="input_patch_size must be a positive int, got -1"):
        BEATsConfig.from_dict({**cfg, "input_patch_size": -1})
    with pytest.raises(ValueError, match="encoder_attention_heads=5 must divide encoder_embed_dim=32"):
        tiny_config(encoder_attention_heads=5)
    with pytest.raises(ValueError, match="deep_norm=True needs post-LN"):
        tiny_config(layer_norm_first=True)
    with pytest.raises(ValueError, match="activation_fn='swish'"):
        tiny_config(activation_fn="swish")
    with pytest.raises(TypeError, match="expects a dict"):
        BEATsConfig.from_dict([("encoder_layers", 2)])


@pytest.mark.slow
def test_base_config_has_the_released_size():
    encoder = BEATsEncoder(BEATsConfig.base())
    assert sum(p.numel() for p in encoder.parameters()) == 90_311_792
    assert len(encoder.to_official_checkpoint()["model"]) == 250


def test_input_errors():
    encoder = BEATsEncoder(tiny_config())
    with pytest.raises(ValueError, match="float tensor \\[B, T\\]"):
        encoder(torch.randn(8000))
    with pytest.raises(ValueError, match="padding_mask must be a bool tensor"):
        encoder(torch.randn(2, 8000), torch.zeros(2, 8000))
    with pytest.raises(ValueError, match="at least 2800 samples"):
        encoder(torch.randn(2, 2000))


def test_backbone_contract_shapes_pool_and_fully_padded_items():
    encoder = BEATsEncoder(tiny_config()).eval()
    waveform = torch.randn(3, 8000) * 0.1  # 0.5 s -> 48 frames -> 3 x 8 patches
    mask = torch.zeros(3, 8000, dtype=torch.bool)
    mask[1, 4000:] = True
    mask[2] = True  # an empty item must not produce NaN
    with torch.no_grad():
        features, patch_mask = encoder(waveform, mask)
    assert encoder.num_patches(8000) == 24 and encoder.embed_dim == 32
    assert features.shape == (3, 24, 32) and patch_mask.shape == (3, 24)
    assert torch.isfinite(features).all()
    assert patch_mask[2].all() and not patch_mask[0].any()
    pooled = encoder.pool(features, patch_mask)
    assert_close(pooled[1], features[1][~patch_mask[1]].mean(dim=0))
    assert torch.equal(pooled[2], torch.zeros(32))


def test_group_matcher_orders_front_end_layers_and_final_norm():
    post_ln = BEATsEncoder(tiny_config())
    layer_of = group_parameters(post_ln, post_ln.group_matcher(), reverse=True)
    assert layer_of["patch_embedding.weight"] == 0 and layer_of["post_extract_proj.weight"] == 0
    assert layer_of["encoder.pos_conv.weight_v"] == 0 and layer_of["encoder.relative_position.weight"] == 0
    assert layer_of["encoder.layer_norm.weight"] == 0  # post-LN: applied before the layers
    assert layer_of["encoder.layers.0.fc1.weight"] == 1 and layer_of["encoder.layers.1.self_attn.grep_a"] == 2
    pre_ln = BEATsEncoder(tiny_config(deep_norm=False, layer_norm_first=True))
    assert pre_ln.group_matcher()("encoder.layer_norm.weight") == 3


def test_visible_encoding_of_all_patches_equals_the_full_forward():
    # the kept-position conv sums in another order than the dense conv: equal up to float rounding
    encoder = BEATsEncoder(tiny_config()).eval()
    waveform = torch.randn(2, 8000) * 0.1
    mask = torch.zeros(2, 8000, dtype=torch.bool)
    mask[1, 6000:] = True
    keep = torch.arange(24).expand(2, 24)
    with torch.no_grad():
        full, full_mask = encoder(waveform, mask)
        visible, visible_mask = encoder.encode_visible(waveform, keep, mask)
    assert_close(visible, full, **TOLERANCE)
    assert torch.equal(visible_mask, full_mask)


def test_visible_tokens_keep_their_positions_and_ignore_masked_content():
    encoder = BEATsEncoder(tiny_config()).eval()
    patches, _ = encoder.embed_patches(torch.randn(2, 8000) * 0.1)
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([torch.randperm(24, generator=generator) for _ in range(2)])
    keep = shuffled[:, :6].sort(dim=1).values
    with torch.no_grad():
        full = encoder.encode_patches(patches)
        # a permutation of all indices only permutes the output: positions travel with the tokens
        assert_close(
            encoder.encode_patches(patches, keep_index=shuffled),
            full.gather(1, shuffled[..., None].expand(-1, -1, 32)),
        )
        visible = encoder.encode_patches(patches, keep_index=keep)
        hidden = torch.ones(2, 24, dtype=torch.bool).scatter(1, keep, False)
        scrambled = torch.where(hidden[..., None], torch.randn_like(patches), patches)
        assert torch.equal(encoder.encode_patches(scrambled, keep_index=keep), visible)
        # the compacted sequence at positions 0..5 is a different computation
        assert not torch.allclose(
            encoder.encode_patches(patches.gather(1, keep[..., None].expand(-1, -1, 32))), visible
        )
    with pytest.raises(ValueError, match="keep_index must be an int64 tensor"):
        encoder.encode_patches(patches, keep_index=keep.int())


def test_layer_wise_gradient_decay_scales_input_gradients_by_ratio_per_layer():
    waveform = torch.randn(1, 8000) * 0.1
    gradients = []
    for ratio in (1.0, 0.5):
        torch.manual_seed(0)
        encoder = BEATsEncoder(
            tiny_config(layer_wise_gradient_decay_ratio=ratio, dropout=0.0, attention_dropout=0.0)
        )
        patches, _ = encoder.embed_patches(waveform)
        patches = patches.detach().requires_grad_()
        encoder.encode_patches(patches).square().sum().backward()
        gradients.append(patches.grad)
    assert_close(gradients[1], gradients[0] * 0.5**2)


def test_classifier_trains_with_dropout_and_layerdrop():
    model = BEATsClassifier(tiny_config(predictor_class=3, encoder_layerdrop=0.5)).train()
    logits = model(torch.randn(2, 8000) * 0.1)
    logits.sum().backward()
    assert logits.shape == (2, 3)
    assert model.predictor.weight.grad is not None and model.encoder.patch_embedding.weight.grad is not None


def test_classifier_forces_finetuned_model_in_its_config():
    model = BEATsClassifier(dataclasses.replace(tiny_config(), predictor_class=4))
    assert model.config.finetuned_model and model.to_official_checkpoint()["cfg"]["finetuned_model"]
    assert "label_dict" not in model.to_official_checkpoint()
