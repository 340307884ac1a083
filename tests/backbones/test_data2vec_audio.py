"""data2vec audio encoder: parity with transformers' Data2VecAudioModel (fixtures and live models), Hugging
Face directories both ways, the data2vec hooks (mask, keep_index, FFN targets, layer dropout) and the
encoder contract."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file
from timm.models import group_parameters
from torch import nn
from torch.testing import assert_close

from ssl_lightning.backbones import data2vec_audio
from ssl_lightning.backbones.data2vec_audio import Data2VecAudioConfig, Data2VecAudioEncoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data2vec"
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


def load_fixture(name: str) -> dict:
    return torch.load(FIXTURES / f"data2vec_audio_hf_{name}.pt", weights_only=True)


@pytest.fixture(scope="module", params=["small", "small_7conv"])
def fixture(request) -> dict:
    return load_fixture(request.param)


@pytest.fixture(scope="module")
def small() -> dict:
    return load_fixture("small")


def reference(fx: dict, cls: type = transformers.Data2VecAudioModel) -> nn.Module:
    """transformers' model (eager attention) with the fixture's weights; task models keep their head init."""
    model = cls._from_config(
        transformers.Data2VecAudioConfig.from_dict(fx["config"]), attn_implementation="eager"
    )
    base = model if cls is transformers.Data2VecAudioModel else model.data2vec_audio
    base.load_state_dict(fx["state_dict"])
    return model.eval()


def waveform(fx: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixture's input and its sample padding mask (True where padded)."""
    return fx["inputs"]["input_values"], fx["inputs"]["attention_mask"] == 0


def tiny_config(**overrides) -> Data2VecAudioConfig:
    """16-wide, 2 blocks, two conv layers (total stride 20, 40-sample receptive field), no dropout."""
    fields = dict(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        hidden_dropout=0.0,
        activation_dropout=0.0,
        attention_dropout=0.0,
        layerdrop=0.0,
        conv_dim=(8, 8),
        conv_kernel=(10, 4),
        conv_stride=(5, 4),
        num_conv_pos_embedding_groups=4,
        conv_pos_kernel_size=4,
        num_conv_pos_embeddings=2,
    )
    return Data2VecAudioConfig(**{**fields, **overrides})


# --- config -------------------------------------------------------------------------------------------


def test_config_defaults_are_transformers_defaults():
    theirs = transformers.Data2VecAudioConfig()
    for field in dataclasses.fields(Data2VecAudioConfig):
        value = getattr(theirs, field.name)
        assert getattr(Data2VecAudioConfig(), field.name) == (
            tuple(value) if isinstance(value, list) else value
        )
    assert Data2VecAudioConfig.base() == Data2VecAudioConfig()


def test_large_preset():
    large = Data2VecAudioConfig.large()
    assert (
        large.hidden_size,
        large.num_hidden_layers,
        large.num_attention_heads,
        large.intermediate_size,
    ) == (
        1024,
        24,
        16,
        4096,
    )
    assert large.conv_dim == (512,) * 7 and large.conv_pos_kernel_size == 19


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"conv_dim": (512, 512)}, "conv_dim"),
        ({"hidden_act": "mish"}, "hidden_act"),
        ({"num_attention_heads": 5}, "num_attention_heads"),
        ({"num_conv_pos_embedding_groups": 5}, "num_conv_pos_embedding_groups"),
        ({"layerdrop": 1.5}, "layerdrop"),
    ],
)
def test_bad_config_is_named(overrides, named):
    with pytest.raises(ValueError, match=named):
        Data2VecAudioConfig(**overrides)


def test_config_builds_from_yaml_through_jsonargparse(encoder_from_yaml):
    init_args = {"config": {**dataclasses.asdict(tiny_config()), "conv_dim": [8, 8], "conv_kernel": [10, 4]}}
    encoder = encoder_from_yaml("ssl_lightning.backbones.data2vec_audio.Data2VecAudioEncoder", init_args)
    assert isinstance(encoder, Data2VecAudioEncoder)
    assert encoder.config == tiny_config() and encoder.embed_dim == 16 and encoder.num_layers == 2


# --- frames ---------------------------------------------------------------------------------------------


def test_frame_count_of_the_standard_stack():
    encoder = Data2VecAudioEncoder(
        tiny_config(conv_dim=(8,) * 7, conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))
    )
    # 16000 -> 3199 -> 1599 -> 799 -> 399 -> 199 -> 99 -> 49 (floor((L - k) / s) + 1 per layer, by hand)
    assert encoder.num_frames(16000) == 49
    assert encoder.num_frames(torch.tensor([16000, 11000, 399])).tolist() == [49, 34, 0]
    # one frame sees 400 samples (25 ms): 1 -> 2 -> 4 -> 9 -> 19 -> 39 -> 79 -> 400 backwards
    assert encoder.min_samples == 400
    assert encoder(torch.randn(1, 400))[0].shape == (1, 1, 16)
    with pytest.raises(ValueError, match="399 samples, fewer than the 400"):
        encoder(torch.randn(1, 399))


def test_frame_padding_mask_is_transformers(fixture, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, fixture)
    x, padding_mask = waveform(fixture)
    tokens, frame_mask = encoder.embed_tokens(x, padding_mask)
    assert torch.equal(~frame_mask, fixture["expected"]["feature_attention_mask"])
    assert (~frame_mask).sum(dim=1).tolist() == fixture["expected"]["feature_lengths"].tolist()
    assert encoder.embed_tokens(x)[1] is None and encoder(x)[1] is None


# --- parity ---------------------------------------------------------------------------------------------


def test_hidden_states_and_output_match_the_fixture(fixture, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, fixture)
    x, padding_mask = waveform(fixture)
    expected = fixture["expected"]
    with torch.no_grad():
        hidden = encoder.hidden_states(x, padding_mask)
        output, _ = encoder(x, padding_mask)
    assert len(hidden) == len(expected["hidden_states"]) == 4
    for got, want in zip(hidden, expected["hidden_states"], strict=True):
        assert_close(got, want, **TOLERANCE)
    assert_close(output, expected["last_hidden_state"], **TOLERANCE)


def test_forward_is_embed_tokens_then_encode_tokens(small, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, small)
    x, padding_mask = waveform(small)
    with torch.no_grad():
        output, frame_mask = encoder(x, padding_mask)
        encoding = encoder.encode_tokens(*encoder.embed_tokens(x, padding_mask))
    assert torch.equal(output, encoding.output) and torch.equal(frame_mask, encoding.padding_mask)
    assert encoding.num_extra_tokens == 0
    assert len(encoding.block_outputs) == len(encoding.ffn_outputs) == 3
    assert torch.equal(encoding.block_outputs[-1], output)


def test_ffn_and_block_outputs_are_transformers_submodule_outputs(small, fixture_encoder):
    encoder, model = fixture_encoder(Data2VecAudioEncoder, small), reference(small)
    x, padding_mask = waveform(small)
    captured = []
    hooks = [
        layer.feed_forward.register_forward_hook(lambda module, args, out: captured.append(out))
        for layer in model.encoder.layers
    ]
    with torch.no_grad():
        theirs = model(x, attention_mask=(~padding_mask).long(), output_hidden_states=True)
        encoding = encoder.encode_tokens(*encoder.embed_tokens(x, padding_mask))
    for hook in hooks:
        hook.remove()
    assert len(captured) == 3
    for got, want in zip(encoding.ffn_outputs, captured, strict=True):
        assert_close(got, want, **TOLERANCE)
    for got, want in zip(encoding.block_outputs, theirs.hidden_states[1:], strict=True):
        assert_close(got, want, **TOLERANCE)


def test_even_positional_kernel_and_conv_bias_match_transformers():
    """The tiny config's even positional kernel (its extra last frame dropped) and conv biases, against a
    transformers model with the same config and weights."""
    config = tiny_config(conv_bias=True, hidden_act="relu")
    encoder = Data2VecAudioEncoder(config).eval()
    model = transformers.Data2VecAudioModel._from_config(
        transformers.Data2VecAudioConfig(**dataclasses.asdict(config)), attn_implementation="eager"
    ).eval()
    model.load_state_dict(encoder.state_dict())
    x = torch.randn(2, 1000)
    padding_mask = torch.arange(1000) >= torch.tensor([[1000], [700]])
    with torch.no_grad():
        theirs = model(x, attention_mask=(~padding_mask).long(), output_hidden_states=True).hidden_states
        mine = encoder.hidden_states(x, padding_mask)
    assert mine[0].shape == (2, 49, 16)
    for got, want in zip(mine, theirs, strict=True):
        assert_close(got, want, **TOLERANCE)


# --- Hugging Face directories ---------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [transformers.Data2VecAudioModel, transformers.Data2VecAudioForCTC])
def test_from_huggingface_reads_save_pretrained(small, tmp_path, cls, assert_same_weights):
    reference(small, cls).save_pretrained(tmp_path)
    if cls is transformers.Data2VecAudioForCTC:  # the base model under a prefix, plus a head
        keys = load_file(tmp_path / "model.safetensors").keys()
        assert "lm_head.weight" in keys and "data2vec_audio.masked_spec_embed" in keys
    encoder = Data2VecAudioEncoder.from_huggingface(tmp_path).eval()
    assert encoder.config == Data2VecAudioEncoder.config_from_huggingface(small["config"])
    x, padding_mask = waveform(small)
    with torch.no_grad():
        output, _ = encoder(x, padding_mask)
    assert_close(output, small["expected"]["last_hidden_state"], **TOLERANCE)

    fresh = Data2VecAudioEncoder(encoder.config)
    fresh.load_huggingface(tmp_path)
    assert_same_weights(encoder, fresh)


def test_to_huggingface_loads_in_transformers(small, tmp_path, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, small)
    encoder.to_huggingface(tmp_path)
    model = transformers.AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(model) is transformers.Data2VecAudioModel
    x, padding_mask = waveform(small)
    with torch.no_grad():
        theirs = model(x, attention_mask=(~padding_mask).long(), output_hidden_states=True)
        mine = encoder.hidden_states(x, padding_mask)
    for got, want in zip(mine, theirs.hidden_states, strict=True):
        assert_close(got, want, **TOLERANCE)
    assert_close(mine[-1], theirs.last_hidden_state, **TOLERANCE)


def test_round_trip_through_huggingface_is_exact(small, tmp_path, fixture_encoder, assert_same_weights):
    encoder = fixture_encoder(Data2VecAudioEncoder, small)
    back = Data2VecAudioEncoder.from_huggingface(encoder.to_huggingface(tmp_path)).eval()
    assert back.config == encoder.config
    assert_same_weights(encoder, back)
    x, padding_mask = waveform(small)
    with torch.no_grad():
        before, after = encoder.hidden_states(x, padding_mask), back.hidden_states(x, padding_mask)
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_wrong_model_type_is_refused(small, tmp_path, fixture_encoder, set_model_type):
    fixture_encoder(Data2VecAudioEncoder, small).to_huggingface(tmp_path)
    set_model_type(tmp_path, "wav2vec2")
    with pytest.raises(ValueError, match="'wav2vec2' model, not 'data2vec-audio'"):
        Data2VecAudioEncoder.from_huggingface(tmp_path)


def test_missing_weights_are_named(small, tmp_path, fixture_encoder, drop_weight):
    fixture_encoder(Data2VecAudioEncoder, small).to_huggingface(tmp_path)
    drop_weight(tmp_path, "encoder.layers.2.final_layer_norm.bias")
    with pytest.raises(ValueError, match=r"missing \['encoder\.layers\.2\.final_layer_norm\.bias'\]"):
        Data2VecAudioEncoder.from_huggingface(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has no weights"):
        Data2VecAudioEncoder.from_huggingface(tmp_path)


def test_weights_of_another_size_are_refused(small, tmp_path):
    reference(small).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="do not fit"):
        Data2VecAudioEncoder(tiny_config()).load_huggingface(tmp_path)


def test_no_mask_embedding_without_masking_probabilities_as_in_transformers():
    config = tiny_config(mask_time_prob=0.0)
    theirs = transformers.Data2VecAudioModel(transformers.Data2VecAudioConfig(**dataclasses.asdict(config)))
    encoder = Data2VecAudioEncoder(config)
    assert set(encoder.state_dict()) == set(theirs.state_dict())
    assert "masked_spec_embed" not in encoder.state_dict()
    tokens, _ = encoder.embed_tokens(torch.randn(1, 200))
    with pytest.raises(ValueError, match="mask_time_prob > 0"):
        encoder.encode_tokens(tokens, mask=torch.ones(1, tokens.shape[1], dtype=torch.bool))


# --- data2vec hooks -------------------------------------------------------------------------------------


def frame_mask(num_frames: int) -> torch.Tensor:
    """Two rows of masked spans (fixed by hand): frames 3-12 and 40-44 in row 0, 0-7 and 120-149 in row 1."""
    mask = torch.zeros(2, num_frames, dtype=torch.bool)
    mask[0, 3:13] = mask[0, 40:45] = True
    mask[1, 0:8] = mask[1, 120:150] = True  # 137-149 lie in row 1's padding (137 valid frames)
    return mask


def test_mask_matches_transformers_mask_time_indices(small, fixture_encoder):
    encoder, model = fixture_encoder(Data2VecAudioEncoder, small), reference(small)
    x, padding_mask = waveform(small)
    mask = frame_mask(200)
    with torch.no_grad():
        theirs = model(x, attention_mask=(~padding_mask).long(), mask_time_indices=mask).last_hidden_state
        encoding = encoder.encode_tokens(*encoder.embed_tokens(x, padding_mask), mask=mask)
    assert_close(encoding.output, theirs, **TOLERANCE)


def test_mask_replaces_exactly_the_masked_frames(small, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, small)
    x, padding_mask = waveform(small)
    mask = frame_mask(200)
    seen = []
    hook = encoder.encoder.pos_conv_embed.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        tokens, frames_padded = encoder.embed_tokens(x, padding_mask)
        encoder.encode_tokens(tokens, frames_padded, mask=mask)
    hook.remove()
    conv_input = seen[0]
    valid = ~frames_padded
    assert torch.equal(
        conv_input[mask & valid], encoder.masked_spec_embed.expand(int((mask & valid).sum()), -1)
    )
    assert torch.equal(conv_input[~mask & valid], tokens[~mask & valid])
    assert not conv_input[frames_padded].any()


def test_keep_index_matches_an_independent_computation(small, fixture_encoder):
    """data2vec 2.0: zero the frames not kept (and padding), positional conv over all frames, LayerNorm,
    gather, blocks on the kept frames only; computed here with transformers' own submodules."""
    encoder, model = fixture_encoder(Data2VecAudioEncoder, small), reference(small)
    x, padding_mask = waveform(small)
    generator = torch.Generator().manual_seed(0)
    keep_index = torch.stack([torch.randperm(200, generator=generator)[:60].sort().values for _ in range(2)])
    with torch.no_grad():
        tokens, frames_padded = encoder.embed_tokens(x, padding_mask)
        encoding = encoder.encode_tokens(tokens, frames_padded, keep_index=keep_index)

        features, _ = model.feature_projection(model.feature_extractor(x).transpose(1, 2))
        dropped = torch.ones(2, 200, dtype=torch.bool)
        for row in range(2):
            dropped[row, keep_index[row]] = False
        features = features.masked_fill((dropped | frames_padded)[..., None], 0.0)
        hidden = model.encoder.layer_norm(features + model.encoder.pos_conv_embed(features))
        hidden = torch.stack([hidden[row, keep_index[row]] for row in range(2)])
        kept_padding = torch.stack([frames_padded[row, keep_index[row]] for row in range(2)])
        additive = torch.zeros(2, 1, 60, 60).masked_fill(
            kept_padding[:, None, None, :], torch.finfo(torch.float32).min
        )
        for index, layer in enumerate(model.encoder.layers):
            hidden = layer(hidden, attention_mask=additive)
            assert_close(encoding.block_outputs[index], hidden, **TOLERANCE)
    assert kept_padding.any() and torch.equal(encoding.padding_mask, kept_padding)
    assert_close(encoding.output, hidden, **TOLERANCE)


def test_keeping_every_frame_is_the_full_pass(small, fixture_encoder):
    encoder = fixture_encoder(Data2VecAudioEncoder, small)
    x, padding_mask = waveform(small)
    with torch.no_grad():
        tokens, frames_padded = encoder.embed_tokens(x, padding_mask)
        full = encoder.encode_tokens(tokens, frames_padded)
        kept = encoder.encode_tokens(tokens, frames_padded, keep_index=torch.arange(200).expand(2, -1))
    assert_close(kept.output, full.output, atol=1e-6, rtol=0)
    assert torch.equal(kept.padding_mask, full.padding_mask)


def test_bad_hook_inputs_are_named():
    encoder = Data2VecAudioEncoder(tiny_config())
    tokens, _ = encoder.embed_tokens(torch.randn(2, 200))  # 9 frames
    mask = torch.zeros(2, 9, dtype=torch.bool)
    with pytest.raises(ValueError, match="not both"):
        encoder.encode_tokens(tokens, mask=mask, keep_index=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="mask must be a bool tensor"):
        encoder.encode_tokens(tokens, mask=mask[:, :5])
    with pytest.raises(ValueError, match="keep_index must be an int64"):
        encoder.encode_tokens(tokens, keep_index=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"tokens must be \[B, N, 16\]"):
        encoder.encode_tokens(tokens[..., :8])
    with pytest.raises(ValueError, match="waveform must be a float tensor"):
        encoder(torch.randn(2, 1, 200))
    with pytest.raises(ValueError, match="padding_mask must be a bool tensor"):
        encoder(torch.randn(2, 200), torch.zeros(2, 100, dtype=torch.bool))


# --- layer dropout, dropout -----------------------------------------------------------------------------


def block_parameters(encoder: Data2VecAudioEncoder) -> list[nn.Parameter]:
    return list(encoder.encoder.layers.parameters())


def test_layerdrop_one_skips_every_block_without_gradient():
    encoder = Data2VecAudioEncoder(tiny_config(layerdrop=1.0)).train()
    tokens, _ = encoder.embed_tokens(torch.randn(2, 400))
    block_input, _ = encoder.encoder.embed_positions(tokens)
    encoding = encoder.encode_tokens(tokens)
    assert torch.equal(encoding.output, block_input)
    assert len(encoding.ffn_outputs) == len(encoding.block_outputs) == 2
    assert all(torch.equal(out, block_input) for out in encoding.ffn_outputs + encoding.block_outputs)
    encoding.output.sum().backward()
    assert all(p.grad is None for p in block_parameters(encoder))
    assert encoder.feature_projection.projection.weight.grad is not None


def test_layerdrop_under_ddp_keeps_skipped_blocks_in_the_graph_at_weight_zero(monkeypatch):
    monkeypatch.setattr(data2vec_audio, "world_size", lambda: 2)
    encoder = Data2VecAudioEncoder(tiny_config(layerdrop=1.0)).train()
    tokens, _ = encoder.embed_tokens(torch.randn(2, 400))
    block_input, _ = encoder.encoder.embed_positions(tokens)
    encoding = encoder.encode_tokens(tokens)
    assert torch.equal(encoding.output, block_input)
    encoding.output.sum().backward()
    assert all(p.grad is not None and not p.grad.any() for p in block_parameters(encoder))


def test_layerdrop_draws_one_number_per_block_from_the_global_rng():
    encoder = Data2VecAudioEncoder(tiny_config(num_hidden_layers=6, layerdrop=0.5)).train()
    tokens, _ = encoder.embed_tokens(torch.randn(1, 400))
    torch.manual_seed(1)
    skipped = [bool(torch.rand(()) < 0.5) for _ in range(6)]
    assert any(skipped) and not all(skipped)
    torch.manual_seed(1)
    encoding = encoder.encode_tokens(tokens)
    previous = encoder.encoder.embed_positions(tokens)[0]
    for index, block_output in enumerate(encoding.block_outputs):
        assert torch.equal(block_output, previous) == skipped[index]
        previous = block_output


def test_dropout_acts_in_training_only():
    encoder = Data2VecAudioEncoder(
        tiny_config(hidden_dropout=0.1, attention_dropout=0.1, activation_dropout=0.1)
    )
    x = torch.randn(2, 400)
    encoder.eval()
    assert torch.equal(encoder(x)[0], encoder(x)[0])
    encoder.train()
    assert not torch.equal(encoder(x)[0], encoder(x)[0])


def test_feature_dropout_acts_in_encode_tokens_so_the_teacher_gets_clean_local_features():
    """fairseq's data2vec audio clones the teacher's input before `dropout_input` (= feat_proj_dropout)."""
    encoder = Data2VecAudioEncoder(tiny_config(feat_proj_dropout=0.5, layerdrop=0.0)).train()
    x = torch.randn(2, 400)
    tokens, _ = encoder.embed_tokens(x)
    assert torch.equal(tokens, encoder.embed_tokens(x)[0])
    seen = []
    hook = encoder.encoder.pos_conv_embed.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    encoder.encode_tokens(tokens)
    dropped = seen[0] == 0
    assert 0.3 < dropped.float().mean() < 0.7  # about half the entries, the others scaled by 1 / (1 - 0.5)
    assert torch.equal(seen[0][~dropped], 2 * tokens[~dropped])
    encoder.eval()
    encoder.encode_tokens(tokens)
    hook.remove()
    assert torch.equal(seen[1], tokens)


# --- contract -------------------------------------------------------------------------------------------


def test_pool_is_the_mean_over_valid_frames():
    encoder = Data2VecAudioEncoder(tiny_config())
    features = torch.tensor([[[1.0, 2.0], [3.0, 6.0], [100.0, 100.0]]])
    pooled = encoder.pool(features, torch.tensor([[False, False, True]]))
    assert torch.equal(pooled, torch.tensor([[2.0, 4.0]]))


def test_group_matcher_puts_the_front_end_first_and_block_i_at_i_plus_one():
    encoder = Data2VecAudioEncoder(tiny_config(num_hidden_layers=3))
    groups = group_parameters(encoder, encoder.group_matcher(), reverse=True)
    names = [name for name, _ in encoder.named_parameters()]
    assert set(groups) == set(names)
    for name in names:
        block = name.split(".")[2] if name.startswith("encoder.layers.") else None
        assert groups[name] == (0 if block is None else int(block) + 1), name


def test_class_attributes_and_ema_skip_keys():
    encoder = Data2VecAudioEncoder(tiny_config())
    assert (encoder.modality, encoder.teacher_shares_front_end, encoder.mask_embedding) == (
        "audio",
        True,
        "masked_spec_embed",
    )
    assert (encoder.hf_model_type, encoder.hf_prefix, encoder.hf_architecture) == (
        "data2vec-audio",
        "data2vec_audio.",
        "Data2VecAudioModel",
    )
    assert encoder.pretraining_unused == ()
    averaged = {key for key in encoder.state_dict() if not key.startswith(encoder.ema_skip_keys)}
    assert averaged and all(key.startswith(("encoder.layers.", "encoder.layer_norm.")) for key in averaged)
    assert any(key.startswith("encoder.pos_conv_embed.") for key in encoder.state_dict())


def test_initialisation_follows_transformers():
    encoder = Data2VecAudioEncoder(tiny_config(intermediate_size=256))
    assert 0.0 <= encoder.masked_spec_embed.min() and encoder.masked_spec_embed.max() < 1.0
    for layer in encoder.encoder.pos_conv_embed.layers:
        assert not layer.conv.bias.any()
    bound = 8**-0.5  # 1 / sqrt(conv_dim[-1])
    projection = encoder.feature_projection.projection
    assert projection.weight.abs().max() <= bound and projection.bias.abs().max() <= bound
    dense = encoder.encoder.layers[0].feed_forward.intermediate_dense
    assert abs(dense.weight.std().item() - 0.02) < 0.002 and not dense.bias.any()
    assert torch.equal(encoder.encoder.layer_norm.weight, torch.ones(16))
