"""Data2VecTextEncoder: parity with transformers' Data2VecTextModel (fixture and live models), Hugging Face
directories both ways, the data2vec pre-training hooks and the input checks."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file
from timm.models import group_parameters
from torch import nn
from torch.testing import assert_close

from ssl_lightning.backbones.data2vec_text import Data2VecTextConfig, Data2VecTextEncoder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data2vec" / "data2vec_text_hf_small.pt"
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}
MASK_ID = 3  # any id other than <pad> (1): the fixture's vocabulary has no real <mask>


@pytest.fixture(scope="module")
def fixture() -> dict:
    return torch.load(FIXTURE, weights_only=True)


@pytest.fixture(scope="module")
def inputs(fixture) -> tuple[torch.Tensor, torch.Tensor]:
    """`(input_ids, padding_mask)` of the fixture (row 1: 11 tokens, then 5 <pad>)."""
    return fixture["inputs"]["input_ids"], fixture["inputs"]["attention_mask"] == 0


def hf_model(fixture, cls=transformers.Data2VecTextModel) -> nn.Module:
    """transformers' `cls` built from the fixture's config, its base model loaded with the fixture weights."""
    config = transformers.Data2VecTextConfig.from_dict(fixture["config"])
    model = cls._from_config(config, attn_implementation="eager")
    base = getattr(model, "data2vec_text", model)
    has_pooler = base.pooler is not None
    base.load_state_dict({k: v for k, v in fixture["state_dict"].items() if has_pooler or "pooler" not in k})
    return model.eval()


def tiny_config(**overrides) -> Data2VecTextConfig:
    fields = dict(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=12,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
    )
    return Data2VecTextConfig(**{**fields, **overrides})


# --- parity with transformers ---------------------------------------------------------------------------


def test_state_dict_is_the_transformers_base_model_state_dict(fixture):
    encoder = Data2VecTextEncoder(Data2VecTextEncoder.config_from_huggingface(fixture["config"]))
    shapes = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
    assert shapes == {key: tuple(value.shape) for key, value in fixture["state_dict"].items()}


def test_fixture_parity_every_hidden_state_and_the_pooler(fixture, inputs, fixture_encoder):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    expected = fixture["expected"]
    with torch.no_grad():
        hidden = encoder.hidden_states(*inputs)
        features, padding_mask = encoder(*inputs)
        pooled = encoder.pooler_output(features)
    assert len(hidden) == len(expected["hidden_states"]) == encoder.num_layers + 1
    for got, want in zip(hidden, expected["hidden_states"], strict=True):
        assert_close(got, want, **TOLERANCE)  # padded positions included: they carry values there too
    assert_close(features, expected["last_hidden_state"], **TOLERANCE)
    assert_close(pooled, expected["pooler_output"], **TOLERANCE)
    assert padding_mask is inputs[1]
    assert torch.equal(encoder.embeddings.position_ids(inputs[0]), expected["position_ids"])


def test_forward_equals_embed_tokens_then_encode_tokens(fixture, inputs, fixture_encoder):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    with torch.no_grad():
        encoding = encoder.encode_tokens(*encoder.embed_tokens(*inputs))
        features, padding_mask = encoder(*inputs)
    assert torch.equal(encoding.output, features)
    assert encoding.padding_mask is padding_mask
    assert encoding.num_extra_tokens == 0


def test_ffn_and_block_outputs_equal_the_transformers_submodules(fixture, inputs, fixture_encoder):
    """`ffn_outputs[i]` = `encoder.layer[i].output.dense`'s output (before dropout, residual and LayerNorm),
    captured by forward hooks; `block_outputs[i]` = `hidden_states[i + 1]`."""
    model = hf_model(fixture)
    captured = []
    hooks = [
        layer.output.dense.register_forward_hook(lambda module, args, out: captured.append(out))
        for layer in model.encoder.layer
    ]
    with torch.no_grad():
        reference = model(
            input_ids=inputs[0], attention_mask=(~inputs[1]).long(), output_hidden_states=True
        ).hidden_states
    for hook in hooks:
        hook.remove()
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    with torch.no_grad():
        encoding = encoder.encode_tokens(*encoder.embed_tokens(*inputs))
    assert len(encoding.ffn_outputs) == len(captured) == 3
    for got, want in zip(encoding.ffn_outputs, captured, strict=True):
        assert_close(got, want, **TOLERANCE)
    for got, want in zip(encoding.block_outputs, reference[1:], strict=True):
        assert_close(got, want, **TOLERANCE)
    # the FFN output is not the block output (post-LN blocks add the residual and normalise after it)
    assert (encoding.ffn_outputs[0] - encoding.block_outputs[0]).abs().max() > 0.1


def test_ffn_outputs_are_taken_before_the_dropout():
    """In training mode dropout(p=0.5) would zero about half of the 64 elements per block; the targets are
    `output.dense(x)` itself, so none is zero (while dropout is active: the outputs differ from eval's)."""
    encoder = Data2VecTextEncoder(tiny_config(hidden_dropout_prob=0.5)).train()
    ids = torch.tensor([[0, 5, 6, 7, 8, 9, 10, 2]])
    torch.manual_seed(0)
    encoding = encoder.encode_tokens(*encoder.embed_tokens(ids))
    assert all(bool((ffn != 0).all()) for ffn in encoding.ffn_outputs)
    with torch.no_grad():
        evaluated = encoder.eval()(ids)[0]
    assert (encoding.output - evaluated).abs().max() > 0.1


def test_keep_index_equals_transformers_blocks_on_the_gathered_embeddings(fixture, inputs, fixture_encoder):
    """data2vec 2.0: the kept embeddings (positions already added) go through the blocks alone; the
    reference runs transformers' own encoder on hand-gathered embeddings with its additive key mask."""
    keep_index = torch.tensor([[0, 2, 3, 7, 9, 15], [1, 4, 5, 10, 12, 14]])  # row 1 keeps 2 padded tokens
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    model = hf_model(fixture)
    with torch.no_grad():
        tokens, padding_mask = encoder.embed_tokens(*inputs)
        encoding = encoder.encode_tokens(tokens, padding_mask, keep_index=keep_index)
        embeddings = model.embeddings(input_ids=inputs[0])
        kept = torch.stack([embeddings[row, keep_index[row]] for row in range(2)])
        kept_padding = torch.stack([inputs[1][row, keep_index[row]] for row in range(2)])
        additive = torch.zeros(2, 1, 1, 6).masked_fill(
            kept_padding[:, None, None, :], torch.finfo(torch.float32).min
        )
        reference = model.encoder(kept, attention_mask=additive).last_hidden_state
    assert kept_padding.tolist() == [[False] * 6, [False, False, False, False, True, True]]
    assert torch.equal(encoding.padding_mask, kept_padding)
    assert encoding.output.shape == (2, 6, 32)
    assert_close(encoding.output, reference, **TOLERANCE)
    # the kept tokens see only each other: not the full pass at those positions
    full = encoder.encode_tokens(tokens, padding_mask).output
    assert (full[0, keep_index[0]] - encoding.output[0]).abs().max() > 1e-3


# --- Hugging Face directories ---------------------------------------------------------------------------


def test_from_huggingface_reads_a_save_pretrained_base_model(fixture, inputs, tmp_path):
    hf_model(fixture).save_pretrained(tmp_path)
    encoder = Data2VecTextEncoder.from_huggingface(tmp_path).eval()
    assert encoder.config == Data2VecTextEncoder.config_from_huggingface(fixture["config"])
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, fixture["state_dict"][key]), key
    with torch.no_grad():
        assert_close(encoder(*inputs)[0], fixture["expected"]["last_hidden_state"], **TOLERANCE)


def test_from_huggingface_reads_a_multiple_choice_model_prefix_and_head_dropped(fixture, inputs, tmp_path):
    model = hf_model(fixture, transformers.Data2VecTextForMultipleChoice)
    assert model.base_model_prefix == "data2vec_text"
    model.save_pretrained(tmp_path)
    assert any(key.startswith("classifier.") for key in load_file(tmp_path / "model.safetensors"))
    encoder = Data2VecTextEncoder.from_huggingface(tmp_path).eval()
    for key, value in encoder.state_dict().items():  # the pooler included: this task model has one
        assert torch.equal(value, fixture["state_dict"][key]), key


def test_from_huggingface_reads_a_masked_lm_without_pooler_and_says_so(fixture, inputs, tmp_path, caplog):
    """Released checkpoints are ForMaskedLM / ForSequenceClassification saves: no pooler weights."""
    hf_model(fixture, transformers.Data2VecTextForMaskedLM).save_pretrained(tmp_path)
    saved = load_file(tmp_path / "model.safetensors")
    assert not any("pooler" in key for key in saved) and "lm_head.dense.weight" in saved
    with caplog.at_level("INFO", logger="ssl_lightning.backbones.data2vec_common"):
        encoder = Data2VecTextEncoder.from_huggingface(tmp_path).eval()
    assert "no pooler weights" in caplog.text
    for key, value in encoder.state_dict().items():
        if not key.startswith("pooler."):
            assert torch.equal(value, fixture["state_dict"][key]), key
    with torch.no_grad():
        assert_close(encoder(*inputs)[0], fixture["expected"]["last_hidden_state"], **TOLERANCE)


def test_to_huggingface_loads_in_transformers_with_the_same_outputs(
    fixture, inputs, tmp_path, fixture_encoder
):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    encoder.to_huggingface(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "data2vec-text" and config["architectures"] == ["Data2VecTextModel"]
    model = transformers.AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(model) is transformers.Data2VecTextModel
    with torch.no_grad():
        reference = model(input_ids=inputs[0], attention_mask=(~inputs[1]).long())
        features = encoder(*inputs)[0]
    assert_close(features, reference.last_hidden_state, **TOLERANCE)
    assert_close(encoder.pooler_output(features), reference.pooler_output, **TOLERANCE)


def test_round_trip_through_a_huggingface_directory_is_exact(
    fixture, inputs, tmp_path, fixture_encoder, assert_same_weights
):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    restored = Data2VecTextEncoder.from_huggingface(encoder.to_huggingface(tmp_path)).eval()
    assert restored.config == encoder.config
    assert_same_weights(encoder, restored)
    with torch.no_grad():
        assert torch.equal(restored(*inputs)[0], encoder(*inputs)[0])


def test_load_huggingface_fills_an_encoder_of_the_same_architecture(
    fixture, inputs, tmp_path, fixture_encoder
):
    fixture_encoder(Data2VecTextEncoder, fixture).to_huggingface(tmp_path)
    encoder = Data2VecTextEncoder(Data2VecTextEncoder.config_from_huggingface(fixture["config"])).eval()
    encoder.load_huggingface(tmp_path)
    assert all(torch.equal(value, fixture["state_dict"][key]) for key, value in encoder.state_dict().items())


def test_another_model_type_is_refused_naming_it(fixture, tmp_path, fixture_encoder, set_model_type):
    fixture_encoder(Data2VecTextEncoder, fixture).to_huggingface(tmp_path)
    set_model_type(tmp_path, "data2vec-audio")
    with pytest.raises(ValueError, match="'data2vec-audio' model, not 'data2vec-text'"):
        Data2VecTextEncoder.from_huggingface(tmp_path)


def test_missing_block_weights_are_an_error_naming_them(fixture, tmp_path, fixture_encoder, drop_weight):
    fixture_encoder(Data2VecTextEncoder, fixture).to_huggingface(tmp_path)
    drop_weight(tmp_path, "encoder.layer.1.output.dense.bias")
    with pytest.raises(ValueError, match=r"missing \['encoder.layer.1.output.dense.bias'\]"):
        Data2VecTextEncoder.from_huggingface(tmp_path)


def test_weights_of_another_size_are_an_error_naming_the_directory(fixture, tmp_path, fixture_encoder):
    fixture_encoder(Data2VecTextEncoder, fixture).to_huggingface(tmp_path)
    encoder = Data2VecTextEncoder(tiny_config())
    with pytest.raises(ValueError, match=f"the weights in {tmp_path} do not fit"):
        encoder.load_huggingface(tmp_path)


# --- embeddings, positions and input checks --------------------------------------------------------------


def test_embeddings_worked_example_positions_from_the_ids():
    """Positions are cumsum(ids != pad) * (ids != pad) + pad: a <pad> in the middle takes position 1 and
    the next token continues the count; `padding_mask` plays no part."""
    encoder = Data2VecTextEncoder(tiny_config()).eval()
    with torch.no_grad():
        for parameter in encoder.embeddings.parameters():
            parameter.normal_()
    ids = torch.tensor([[0, 7, 1, 9, 2, 1], [0, 4, 5, 6, 8, 2]])
    positions = [[2, 3, 1, 4, 5, 1], [2, 3, 4, 5, 6, 7]]  # by hand
    weights = encoder.embeddings
    with torch.no_grad():
        got, padding_mask = encoder.embed_tokens(ids, torch.tensor([[False] * 5 + [True]] * 2))
        for row in range(2):
            for column in range(6):
                summed = (
                    weights.word_embeddings.weight[ids[row, column]]
                    + weights.token_type_embeddings.weight[0]
                    + weights.position_embeddings.weight[positions[row][column]]
                )
                want = F.layer_norm(summed, (8,), weights.LayerNorm.weight, weights.LayerNorm.bias, eps=1e-5)
                assert_close(got[row, column], want, atol=1e-6, rtol=1e-5)
        assert torch.equal(got, encoder.embed_tokens(ids)[0])
    assert padding_mask.tolist() == [[False] * 5 + [True]] * 2


def test_mask_token_ids_change_only_the_masked_embeddings(fixture, inputs, fixture_encoder):
    """data2vec 1.0 on text: the student's masked ids become <mask>; the other tokens keep their embedding
    (positions do not move)."""
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    masked = torch.zeros_like(inputs[1])
    masked[0, [3, 4, 9]] = True
    masked[1, [1, 6]] = True
    ids = inputs[0].masked_fill(masked, MASK_ID)
    with torch.no_grad():
        student = encoder.embed_tokens(ids, inputs[1])[0]
        teacher = encoder.embed_tokens(*inputs)[0]
    changed = (student - teacher).abs().amax(dim=-1) > 1e-4
    assert torch.equal(changed, masked)


def test_encode_tokens_refuses_an_embedding_mask(fixture, inputs, fixture_encoder):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    tokens, padding_mask = encoder.embed_tokens(*inputs)
    with pytest.raises(ValueError, match="replace the masked ids by the <mask> id"):
        encoder.encode_tokens(tokens, padding_mask, mask=torch.zeros_like(padding_mask))
    with pytest.raises(ValueError, match="keep_index must be token indices"):
        encoder.encode_tokens(tokens, padding_mask, keep_index=torch.zeros(3, 2, dtype=torch.long))


def test_padded_keys_are_ignored_and_no_padding_mask_means_nothing_padded(fixture, inputs, fixture_encoder):
    encoder = fixture_encoder(Data2VecTextEncoder, fixture)
    ids, padding_mask = inputs
    other = ids.clone()
    other[1, 11:] = torch.tensor([40, 41, 42, 43, 44])  # different tokens at the padded positions
    with torch.no_grad():
        features = encoder(ids, padding_mask)[0]
        changed = encoder(other, padding_mask)[0]
        assert_close(changed[:, :11], features[:, :11], atol=1e-6, rtol=0)
        assert (changed[1, 11:] - features[1, 11:]).abs().max() > 1e-2
        unpadded = torch.zeros_like(padding_mask)
        assert torch.equal(encoder(ids, None)[0], encoder(ids, unpadded)[0])
        assert (encoder(ids, None)[0][1, :11] - features[1, :11]).abs().max() > 1e-3


def test_sequence_longer_than_the_positions_is_refused_naming_both():
    encoder = Data2VecTextEncoder(tiny_config()).eval()  # 12 positions, pad 1: at most 10 tokens
    assert encoder(torch.full((1, 10), 5))[0].shape == (1, 10, 8)
    with pytest.raises(ValueError, match=r"L=11 .*max_position_embeddings=12.*at most 10 tokens"):
        encoder(torch.full((1, 11), 5))


@pytest.mark.parametrize(
    ("ids", "padding_mask", "match"),
    [
        (torch.zeros(2, 4), None, "x must be integer token ids"),
        (torch.zeros(2, 4, 3, dtype=torch.long), None, "x must be integer token ids"),
        (torch.tensor([[0, 20, 2]]), None, r"vocab_size=20\); got 0..20"),
        (torch.tensor([[0, 5, 2]]), torch.zeros(1, 3, dtype=torch.long), "padding_mask must be bool"),
        (torch.tensor([[0, 5, 2]]), torch.zeros(1, 4, dtype=torch.bool), "padding_mask must be bool"),
    ],
)
def test_bad_inputs_are_named(ids, padding_mask, match):
    with pytest.raises(ValueError, match=match):
        Data2VecTextEncoder(tiny_config())(ids, padding_mask)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"num_attention_heads": 3}, "num_attention_heads=3 must divide hidden_size=8"),
        ({"hidden_act": "swiglu"}, "hidden_act='swiglu' is not supported"),
        ({"pad_token_id": 20}, "pad_token_id=20"),
    ],
)
def test_bad_configs_are_named(overrides, match):
    with pytest.raises(ValueError, match=match):
        tiny_config(**overrides)


# --- pooling, groups, pre-training attributes, configs ---------------------------------------------------


def test_pool_is_the_mean_over_non_padded_tokens():
    features = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], [[1.0, 1.0], [3.0, -1.0], [100.0, 100.0]]])
    padding_mask = torch.tensor([[False, False, False], [False, False, True]])
    pooled = Data2VecTextEncoder(tiny_config()).pool(features, padding_mask)
    assert_close(pooled, torch.tensor([[3.0, 4.0], [2.0, 0.0]]))


def test_group_matcher_puts_embeddings_blocks_and_pooler_in_order():
    encoder = Data2VecTextEncoder(tiny_config())
    for coarse in (False, True):
        layer_of = group_parameters(encoder, encoder.group_matcher(coarse=coarse), reverse=True)
        assert layer_of.keys() == dict(encoder.named_parameters()).keys()
        assert layer_of["embeddings.word_embeddings.weight"] == layer_of["embeddings.LayerNorm.bias"] == 0
        assert layer_of["encoder.layer.0.attention.self.query.weight"] == 1
        assert layer_of["encoder.layer.1.output.LayerNorm.weight"] == 2
        assert layer_of["pooler.dense.weight"] == 3


def test_pretraining_path_leaves_exactly_the_pooler_unused_and_skip_keys_are_the_embeddings():
    encoder = Data2VecTextEncoder(tiny_config())
    ids = torch.tensor([[0, 5, 6, 7, 2, 1], [0, 8, 9, 2, 1, 1]])
    tokens, padding_mask = encoder.embed_tokens(ids, ids == 1)
    encoding = encoder.encode_tokens(tokens, padding_mask, keep_index=torch.tensor([[0, 2, 3], [1, 2, 3]]))
    sum(output.sum() for output in encoding.ffn_outputs + [encoding.output]).backward()
    unused = {name for name, parameter in encoder.named_parameters() if parameter.grad is None}
    assert unused == {"pooler.dense.weight", "pooler.dense.bias"}
    assert all(name.startswith(encoder.pretraining_unused) for name in unused)
    skipped = {name for name in encoder.state_dict() if name.startswith(encoder.ema_skip_keys)}
    assert skipped == {
        "embeddings.word_embeddings.weight",
        "embeddings.position_embeddings.weight",
        "embeddings.token_type_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "embeddings.LayerNorm.bias",
    }
    assert (encoder.modality, encoder.teacher_shares_front_end, encoder.mask_embedding) == (
        "text",
        False,
        None,
    )
    assert (encoder.hf_model_type, encoder.hf_prefix) == ("data2vec-text", "data2vec_text.")


def test_config_defaults_are_transformers_and_presets_are_the_released_sizes():
    reference = transformers.Data2VecTextConfig()
    for field in dataclasses.fields(Data2VecTextConfig):
        assert getattr(Data2VecTextConfig(), field.name) == getattr(reference, field.name), field.name
    base, large = Data2VecTextConfig.base(), Data2VecTextConfig.large()
    assert (base.hidden_size, base.num_hidden_layers, base.num_attention_heads, base.intermediate_size) == (
        768,
        12,
        12,
        3072,
    )
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
    for preset in (base, large):
        assert (preset.vocab_size, preset.max_position_embeddings, preset.type_vocab_size) == (50265, 514, 1)
        assert (preset.layer_norm_eps, preset.pad_token_id, preset.hidden_act) == (1e-5, 1, "gelu")
    assert Data2VecTextEncoder().config == base


def test_init_follows_transformers():
    encoder = Data2VecTextEncoder(tiny_config(vocab_size=400, hidden_size=64, num_attention_heads=4))
    embeddings = encoder.embeddings
    assert torch.equal(embeddings.word_embeddings.weight[1], torch.zeros(64))
    assert torch.equal(embeddings.position_embeddings.weight[1], torch.zeros(64))
    assert 0.018 < embeddings.word_embeddings.weight.std().item() < 0.022
    assert 0.018 < encoder.encoder.layer[0].intermediate.dense.weight.std().item() < 0.022
    assert torch.equal(encoder.encoder.layer[0].output.dense.bias, torch.zeros(64))
    assert torch.equal(encoder.encoder.layer[0].output.LayerNorm.weight, torch.ones(64))


def test_jsonargparse_builds_the_encoder_from_a_yaml_style_config(encoder_from_yaml):
    init_args = {
        "config": {"vocab_size": 30, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2}
    }
    encoder = encoder_from_yaml("ssl_lightning.backbones.data2vec_text.Data2VecTextEncoder", init_args)
    assert isinstance(encoder, Data2VecTextEncoder)
    assert (encoder.embed_dim, encoder.num_layers, encoder.config.vocab_size) == (16, 1, 30)
