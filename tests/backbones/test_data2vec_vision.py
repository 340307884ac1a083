"""Data2VecVisionEncoder: parity with transformers' Data2VecVisionModel (fixtures and live models), Hugging
Face directories both ways, the relative position bias, and the data2vec hooks (mask tokens, kept patches, FFN
and block outputs, stochastic depth)."""

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers
import yaml
from safetensors.torch import save_file
from timm.models import group_parameters
from torch import nn
from torch.testing import assert_close

from ssl_lightning.backbones.data2vec_vision import (
    HF_IMAGE_SIZE_KEY,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Data2VecVisionConfig,
    Data2VecVisionEncoder,
    relative_position_index,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "data2vec"
FINETUNED = "data2vec_vision_hf_small.pt"
PRETRAINED = "data2vec_vision_hf_small_pretrained.pt"
LAYOUTS = [FINETUNED, PRETRAINED]
TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}


def load_fixture(name: str) -> dict:
    """A tiny transformers model's config, state dict, inputs and outputs (README in tests/fixtures)."""
    return torch.load(FIXTURES / name, weights_only=True)


@pytest.fixture(scope="module", params=LAYOUTS, ids=["finetuned", "pretrained"])
def fixture(request) -> dict:
    return load_fixture(request.param)


def hf_config(config: dict) -> transformers.Data2VecVisionConfig:
    hf = transformers.Data2VecVisionConfig.from_dict(config)
    hf._attn_implementation = "eager"
    return hf


def hf_model_of(fx: dict, cls=transformers.Data2VecVisionModel, **kwargs) -> nn.Module:
    """The fixture's transformers model (eager attention, eval mode); task models get the weights under the
    base model's prefix."""
    model = cls(hf_config(fx["config"]), **kwargs)
    state = fx["state_dict"]
    if cls is not transformers.Data2VecVisionModel:
        state = {f"data2vec_vision.{key}": value for key, value in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        assert not unexpected and all(key.startswith("classifier.") for key in missing)
    else:
        model.load_state_dict(state)
    return model.eval()


def assert_outputs_match(encoder: Data2VecVisionEncoder, expected: dict, pixels: torch.Tensor) -> None:
    with torch.no_grad():
        hidden = encoder.hidden_states(pixels)
        output, mask = encoder(pixels)
    assert mask is None
    assert len(hidden) == len(expected["hidden_states"]) == encoder.num_layers + 1
    for got, want in zip(hidden, expected["hidden_states"], strict=True):
        assert_close(got, want, **TOLERANCE)
    assert_close(output, expected["last_hidden_state"], **TOLERANCE)


# --- parity with transformers -----------------------------------------------------------------------------


def test_state_dict_keys_are_the_transformers_keys(fixture, fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, fixture)
    assert set(encoder.state_dict()) == set(fixture["state_dict"])
    # the index is a buffer that moves with the module but stays out of the state dict, as in transformers
    assert any(name.endswith("relative_position_index") for name, _ in encoder.named_buffers())


def test_outputs_match_the_transformers_fixture(fixture, fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, fixture)
    pixels = fixture["inputs"]["pixel_values"]
    assert_outputs_match(encoder, fixture["expected"], pixels)
    with torch.no_grad():
        output = encoder(pixels)[0]
        pooled = encoder.pool(output)
        tokens, none = encoder.embed_tokens(pixels)
        encoded = encoder.encode_tokens(tokens)
    assert none is None and tokens.shape == (2, 64, 32)
    assert torch.equal(encoded.output, output)
    assert encoded.num_extra_tokens == 1 and encoded.padding_mask is None
    if encoder.config.use_mean_pooling:  # fine-tuned layout: transformers' pooler_output
        assert_close(pooled, fixture["expected"]["pooler_output"], **TOLERANCE)
    else:  # pretrained layout: the mean patch token of the output, not transformers' CLS pooler
        last = fixture["expected"]["last_hidden_state"]
        assert torch.equal(fixture["expected"]["pooler_output"], last[:, 0])
        assert_close(pooled, last[:, 1:].sum(dim=1) / 64, **TOLERANCE)


def test_features_of_absolute_positions_and_both_biases_match_transformers():
    """The configuration options the fixtures leave off: absolute positions, per-layer plus shared bias,
    no layer scale (a randomly perturbed transformers model)."""
    model = perturbed_hf_model(OPTIONS_CONFIG)
    encoder = Data2VecVisionEncoder(Data2VecVisionEncoder.config_from_huggingface(model.config.to_dict()))
    encoder.load_state_dict(model.state_dict())
    encoder.eval()
    assert encoder.encoder.layer[0].lambda_1 is None
    pixels = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(pixels, output_hidden_states=True)
    assert_outputs_match(encoder, {"hidden_states": expected.hidden_states, **expected}, pixels)


OPTIONS_CONFIG = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=24,
    image_size=16,
    patch_size=4,
    use_absolute_position_embeddings=True,
    use_relative_position_bias=True,
    use_shared_relative_position_bias=True,
    layer_scale_init_value=0.0,
    use_mean_pooling=False,
    drop_path_rate=0.0,
)


def perturbed_hf_model(fields: dict) -> nn.Module:
    """A transformers model (add_pooling_layer=True, eval) whose every parameter moved off its init."""
    torch.manual_seed(0)
    config = transformers.Data2VecVisionConfig(**fields)
    config._attn_implementation = "eager"
    model = transformers.Data2VecVisionModel(config, add_pooling_layer=True)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def test_pixel_statistics_normalise_images_in_0_1(fixture_encoder):
    fx = load_fixture(FINETUNED)
    mean, std = (0.2, 0.5, 0.7), (0.25, 0.5, 2.0)
    encoder = fixture_encoder(Data2VecVisionEncoder, fx, pixel_mean=mean, pixel_std=std)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    normalised = (images - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    with torch.no_grad():
        expected = hf_model_of(fx, add_pooling_layer=True)(normalised, output_hidden_states=True)
    assert_outputs_match(encoder, {"hidden_states": expected.hidden_states, **expected}, images)


# --- the relative position bias ----------------------------------------------------------------------------


def test_relative_position_index_of_a_2x2_grid():
    # 2x2 grid: (2*2-1)*(2*2-1) + 3 = 12 table rows; patches 0:(0,0) 1:(0,1) 2:(1,0) 3:(1,1) are tokens 1..4.
    # patch p=(r1,c1) to q=(r2,c2): (r1 - r2 + 1) * 3 + (c1 - c2 + 1)
    index = relative_position_index(2, 2)
    assert index.shape == (5, 5)
    assert index[1, 1] == 4  # (0,0) -> (0,0): 1*3 + 1
    assert index[1, 4] == 0  # (0,0) -> (1,1): 0*3 + 0
    assert index[4, 1] == 8  # (1,1) -> (0,0): 2*3 + 2
    assert index[2, 3] == 2  # (0,1) -> (1,0): 0*3 + 2
    assert index[3, 2] == 6  # (1,0) -> (0,1): 2*3 + 0
    assert index[0, 2] == 9 and index[0, 4] == 9  # CLS -> patch: 12 - 3
    assert index[3, 0] == 10  # patch -> CLS: 12 - 2
    assert index[0, 0] == 11  # CLS -> CLS: 12 - 1
    assert torch.equal(index[1:, 1:].diagonal(), torch.full((4,), 4))


def test_relative_position_index_of_a_2x3_grid():
    # 2 rows x 3 cols: (2*2-1)*(2*3-1) + 3 = 18 table rows; patches 0:(0,0) 1:(0,1) 2:(0,2) 3:(1,0) 4:(1,1)
    # 5:(1,2) are tokens 1..6; p=(r1,c1) -> q=(r2,c2): (r1 - r2 + 1) * 5 + (c1 - c2 + 2). CLS -> patch 15,
    # patch -> CLS 16, CLS -> CLS 17.
    expected = torch.tensor(
        [
            [17, 15, 15, 15, 15, 15, 15],
            [16, 7, 6, 5, 2, 1, 0],
            [16, 8, 7, 6, 3, 2, 1],
            [16, 9, 8, 7, 4, 3, 2],
            [16, 12, 11, 10, 7, 6, 5],
            [16, 13, 12, 11, 8, 7, 6],
            [16, 14, 13, 12, 9, 8, 7],
        ]
    )
    assert torch.equal(relative_position_index(2, 3), expected)
    generate = transformers.models.data2vec.modeling_data2vec_vision.Data2VecVisionRelativePositionBias
    assert torch.equal(generate.generate_relative_position_index((2, 3)), expected)
    assert torch.equal(relative_position_index(3, 2).max(), torch.tensor(17))  # same table size transposed


def naive_relative_row(
    query: tuple[int, int] | None, key: tuple[int, int] | None, height: int, width: int
) -> int:
    """The table row of one (query, key) pair of grid positions (None = CLS), BEiT's rule case by case."""
    rows = (2 * height - 1) * (2 * width - 1) + 3
    if query is None:
        return rows - 1 if key is None else rows - 3
    if key is None:
        return rows - 2
    return (query[0] - key[0] + height - 1) * (2 * width - 1) + (query[1] - key[1] + width - 1)


def naive_bias(table: torch.Tensor, kept: list[int], height: int, width: int) -> torch.Tensor:
    """`[H, 1 + K, 1 + K]` bias of CLS + the patches `kept`, one table lookup per pair in a loop."""
    positions = [None] + [divmod(patch, width) for patch in kept]
    bias = torch.empty(table.shape[1], len(positions), len(positions))
    for i, query in enumerate(positions):
        for j, key in enumerate(positions):
            bias[:, i, j] = table[naive_relative_row(query, key, height, width)]
    return bias


def test_kept_patches_get_the_bias_of_their_grid_positions(fixture_encoder):
    fx = load_fixture(PRETRAINED)
    bias_module = fixture_encoder(Data2VecVisionEncoder, fx).encoder.relative_position_bias
    table = fx["state_dict"]["encoder.relative_position_bias.relative_position_bias_table"]
    keep_index = torch.tensor([[0, 9, 27, 63], [5, 6, 7, 40]])
    with torch.no_grad():
        bias = bias_module(keep_index)
        full = bias_module()
    assert bias.shape == (2, 4, 5, 5) and full.shape == (1, 4, 65, 65)
    for b in range(2):
        assert torch.equal(bias[b], naive_bias(table, keep_index[b].tolist(), 8, 8))
    assert torch.equal(full[0], naive_bias(table, list(range(64)), 8, 8))


# --- the data2vec hooks ------------------------------------------------------------------------------------


def reference_encoding(
    state: dict, config: dict, grid: tuple[int, int], tokens: torch.Tensor, kept: list[int]
) -> torch.Tensor:
    """Independent re-implementation (plain functional ops, explicit softmax, the bias by `naive_bias` on the
    `grid` (rows, cols)) of one sample's pass over CLS + the patch tokens `kept`: `[1 + K, D]` (after the
    final norm, if any)."""
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    x = torch.cat([state["embeddings.cls_token"][0], tokens[kept]])
    if "embeddings.position_embeddings" in state:
        x = x + state["embeddings.position_embeddings"][0, [0] + [k + 1 for k in kept]]
    shared = state.get("encoder.relative_position_bias.relative_position_bias_table")
    for i in range(config["num_hidden_layers"]):
        p = {
            key.removeprefix(f"encoder.layer.{i}."): v
            for key, v in state.items()
            if key.startswith(f"encoder.layer.{i}.")
        }
        y = F.layer_norm(x, x.shape[-1:], p["layernorm_before.weight"], p["layernorm_before.bias"], eps)
        q = (y @ p["attention.attention.query.weight"].T + p["attention.attention.query.bias"]).unflatten(
            1, (heads, -1)
        )
        k = (y @ p["attention.attention.key.weight"].T).unflatten(1, (heads, -1))
        v = (y @ p["attention.attention.value.weight"].T + p["attention.attention.value.bias"]).unflatten(
            1, (heads, -1)
        )
        scores = torch.einsum("ihd,jhd->hij", q, k) / math.sqrt(q.shape[-1])
        for table in (
            shared,
            p.get("attention.attention.relative_position_bias.relative_position_bias_table"),
        ):
            if table is not None:
                scores = scores + naive_bias(table, kept, *grid)
        weights = scores.exp() / scores.exp().sum(dim=-1, keepdim=True)
        context = torch.einsum("hij,jhd->ihd", weights, v).flatten(1)
        attended = context @ p["attention.output.dense.weight"].T + p["attention.output.dense.bias"]
        x = x + p.get("lambda_1", 1.0) * attended
        y = F.layer_norm(x, x.shape[-1:], p["layernorm_after.weight"], p["layernorm_after.bias"], eps)
        hidden = F.gelu(y @ p["intermediate.dense.weight"].T + p["intermediate.dense.bias"])
        x = x + p.get("lambda_2", 1.0) * (hidden @ p["output.dense.weight"].T + p["output.dense.bias"])
    if "layernorm.weight" in state:
        x = F.layer_norm(x, x.shape[-1:], state["layernorm.weight"], state["layernorm.bias"], eps)
    return x


def perturbed_encoder(config: Data2VecVisionConfig) -> Data2VecVisionEncoder:
    """Our encoder (eval) with every parameter moved off its init."""
    encoder = Data2VecVisionEncoder(config)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return encoder.eval()


# a 4 x 2 patch grid (rows != cols), absolute positions and both biases
RECTANGULAR_CONFIG = Data2VecVisionConfig(**{**OPTIONS_CONFIG, "image_size": (16, 8)})


def keep_index_cases() -> list:
    options = perturbed_hf_model(OPTIONS_CONFIG)
    options_case = {"config": options.config.to_dict(), "state_dict": options.state_dict()}
    rectangular = perturbed_encoder(RECTANGULAR_CONFIG)
    rectangular_case = {
        "config": dataclasses.asdict(rectangular.config),
        "state_dict": rectangular.state_dict(),
        "encoder": rectangular,
    }
    return [load_fixture(FINETUNED), load_fixture(PRETRAINED), options_case, rectangular_case]


@pytest.mark.parametrize(
    "case", keep_index_cases(), ids=["finetuned", "pretrained", "abs-pos+both-biases", "4x2-grid"]
)
def test_keep_index_equals_an_independent_computation(case, fixture_encoder):
    encoder = case["encoder"] if "encoder" in case else fixture_encoder(Data2VecVisionEncoder, case)
    assert encoder.grid == {64: (8, 8), 16: (4, 4), 8: (4, 2)}[encoder.num_patches]
    images = torch.randn(2, 3, *encoder.config.image_shape, generator=torch.Generator().manual_seed(2))
    n = encoder.num_patches
    keep_index = torch.stack([torch.tensor([0, 3, 5, n - 1]), torch.tensor([1, 2, n // 2, n - 2])])
    with torch.no_grad():
        tokens, _ = encoder.embed_tokens(images)
        visible = encoder.encode_tokens(tokens, keep_index=keep_index)
        full = encoder.encode_tokens(tokens)
        every = encoder.encode_tokens(tokens, keep_index=torch.arange(n).expand(2, -1))
        references = [
            reference_encoding(case["state_dict"], case["config"], encoder.grid, tokens[b], list(range(n)))
            for b in range(2)
        ]
        subsets = [
            reference_encoding(
                case["state_dict"], case["config"], encoder.grid, tokens[b], keep_index[b].tolist()
            )
            for b in range(2)
        ]
    # the reference reproduces the full pass, so it is a valid oracle for the subset
    assert_close(full.output, torch.stack(references), **TOLERANCE)
    assert visible.output.shape == (2, 5, encoder.embed_dim) and visible.num_extra_tokens == 1
    assert_close(visible.output, torch.stack(subsets), **TOLERANCE)
    assert len(visible.ffn_outputs) == len(visible.block_outputs) == encoder.num_layers
    # every patch kept == the full pass
    assert_close(every.output, full.output, atol=1e-6, rtol=1e-6)
    for got, want in zip(
        every.block_outputs + every.ffn_outputs, full.block_outputs + full.ffn_outputs, strict=True
    ):
        assert_close(got, want, atol=1e-6, rtol=1e-6)


def test_mask_replaces_exactly_the_masked_patches(fixture_encoder):
    fx = load_fixture(PRETRAINED)
    encoder = fixture_encoder(Data2VecVisionEncoder, fx)
    pixels = fx["inputs"]["pixel_values"]
    mask = torch.zeros(2, 64, dtype=torch.bool)
    mask[0, [0, 1, 2, 9, 10, 11]] = True
    mask[1, 30:50] = True
    with torch.no_grad():
        tokens, _ = encoder.embed_tokens(pixels)
        masked = encoder.encode_tokens(tokens, mask=mask)
        expected = hf_model_of(fx, add_pooling_layer=True)(
            pixels, bool_masked_pos=mask, output_hidden_states=True
        )
        # what sits at masked positions does not matter; an unmasked patch does
        scrambled = encoder.encode_tokens(
            torch.where(mask[..., None], torch.randn_like(tokens), tokens), mask=mask
        )
        moved = tokens.clone()
        moved[0, 3] += 1.0
        changed = encoder.encode_tokens(moved, mask=mask)
    assert_close(masked.output, expected.last_hidden_state, **TOLERANCE)
    for got, want in zip(masked.block_outputs, expected.hidden_states[1:], strict=True):
        assert_close(got, want, **TOLERANCE)
    assert torch.equal(scrambled.output, masked.output)
    assert not torch.allclose(changed.output[0], masked.output[0])
    assert torch.equal(changed.output[1], masked.output[1])


def test_ffn_and_block_outputs_are_the_transformers_mlp_and_layer_outputs(fixture, fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, fixture)
    model = hf_model_of(fixture, add_pooling_layer=True)
    captured = []
    hooks = [
        layer.output.register_forward_hook(lambda m, i, o: captured.append(o))
        for layer in model.encoder.layer
    ]
    pixels = fixture["inputs"]["pixel_values"]
    with torch.no_grad():
        model(pixels)
        encoded = encoder.encode_tokens(*encoder.embed_tokens(pixels))
    for hook in hooks:
        hook.remove()
    assert len(encoded.ffn_outputs) == len(captured) == 3
    for got, want in zip(encoded.ffn_outputs, captured, strict=True):
        assert_close(got, want, **TOLERANCE)
    for got, want in zip(encoded.block_outputs, fixture["expected"]["hidden_states"][1:], strict=True):
        assert_close(got, want, **TOLERANCE)


def test_patch_tokens_are_the_patches_in_row_major_order(fixture_encoder):
    fx = load_fixture(FINETUNED)
    encoder = fixture_encoder(Data2VecVisionEncoder, fx)
    pixels = fx["inputs"]["pixel_values"]
    weight = fx["state_dict"]["embeddings.patch_embeddings.projection.weight"].flatten(1)
    bias = fx["state_dict"]["embeddings.patch_embeddings.projection.bias"]
    with torch.no_grad():
        tokens, _ = encoder.embed_tokens(pixels)
    for row, col in [(0, 0), (0, 7), (2, 5), (7, 7)]:
        patch = pixels[:, :, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4].flatten(1)
        assert_close(tokens[:, 8 * row + col], patch @ weight.T + bias, atol=1e-5, rtol=1e-5)


def test_mask_needs_a_mask_token_and_excludes_keep_index(fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, load_fixture(FINETUNED))
    assert encoder.mask_embedding is None
    tokens = torch.randn(1, 64, 32)
    with pytest.raises(ValueError, match="use_mask_token"):
        encoder.encode_tokens(tokens, mask=torch.zeros(1, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match="not both"):
        encoder.encode_tokens(
            tokens, mask=torch.zeros(1, 64, dtype=torch.bool), keep_index=torch.zeros(1, 2).long()
        )
    with pytest.raises(ValueError, match=r"tokens must be \[B, 64, 32\]"):
        encoder.encode_tokens(torch.randn(1, 63, 32))
    with pytest.raises(ValueError, match="keep_index must be int64"):
        encoder.encode_tokens(tokens, keep_index=torch.zeros(1, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="padding_mask"):
        encoder.encode_tokens(tokens, padding_mask=torch.zeros(1, 64, dtype=torch.bool))


def test_images_must_have_the_configured_size_and_no_padding_mask(fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, load_fixture(FINETUNED))
    with pytest.raises(ValueError, match=r"expects 32 x 32 images .* got 28 x 32"):
        encoder(torch.randn(1, 3, 28, 32))
    with pytest.raises(ValueError, match=r"expects 16 x 8 images .* got 8 x 16"):
        Data2VecVisionEncoder(RECTANGULAR_CONFIG)(torch.randn(1, 3, 8, 16))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        encoder(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="padding_mask"):
        encoder(torch.randn(1, 3, 32, 32), torch.zeros(1, 32, dtype=torch.bool))


def test_drop_path_rises_linearly_over_depth_and_drops_whole_samples_in_training():
    config = Data2VecVisionConfig(
        hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=24, image_size=8,
        patch_size=4, drop_path_rate=0.5, use_relative_position_bias=True,
    )  # fmt: skip
    encoder = Data2VecVisionEncoder(config)
    assert [layer.drop_path.drop_prob for layer in encoder.encoder.layer] == [0.0, 0.25, 0.5]
    layer = encoder.encoder.layer[2]
    with torch.no_grad():
        layer.lambda_2.zero_()  # only the attention branch is left to drop
    h = torch.randn(16, 5, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.eval()
        kept = layer(h, None, None)[0]
        assert torch.equal(layer(h, None, None)[0], kept)
        layer.train()
        torch.manual_seed(0)
        trained = layer(h, None, None)[0]
    # per sample: the branch is dropped (output = input) or kept and scaled by 1 / (1 - 0.5)
    scaled = h + (kept - h) / 0.5
    dropped = [torch.allclose(trained[b], h[b]) for b in range(16)]
    for b in range(16):
        assert dropped[b] or torch.allclose(trained[b], scaled[b], atol=1e-6)
    assert 0 < sum(dropped) < 16


# --- Hugging Face directories -----------------------------------------------------------------------------


@pytest.mark.parametrize("task_model", [False, True], ids=["base-model", "image-classification"])
def test_from_huggingface_reads_save_pretrained_directories(fixture, task_model, tmp_path):
    if task_model:
        model = hf_model_of(fixture, transformers.Data2VecVisionForImageClassification)
    else:
        model = hf_model_of(fixture, add_pooling_layer=True)
    model.save_pretrained(tmp_path)
    encoder = Data2VecVisionEncoder.from_huggingface(tmp_path).eval()
    assert encoder.config == Data2VecVisionEncoder.config_from_huggingface(fixture["config"])
    pixels = fixture["inputs"]["pixel_values"]
    assert_outputs_match(encoder, fixture["expected"], pixels)
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, fixture["state_dict"][name]), name


def test_a_base_model_saved_without_pooler_loads_and_says_so(tmp_path, caplog):
    fx = load_fixture(FINETUNED)
    model = transformers.Data2VecVisionModel(hf_config(fx["config"]))  # add_pooling_layer=False
    model.load_state_dict(
        {key: value for key, value in fx["state_dict"].items() if not key.startswith("pooler.")}
    )
    model.save_pretrained(tmp_path)
    with caplog.at_level("INFO", logger="ssl_lightning.backbones.data2vec_common"):
        encoder = Data2VecVisionEncoder.from_huggingface(tmp_path).eval()
    assert "no pooler weights" in caplog.text
    assert_outputs_match(encoder, fx["expected"], fx["inputs"]["pixel_values"])
    assert torch.equal(encoder.pooler.layernorm.weight, torch.ones(32))


def test_relative_position_index_entries_of_older_checkpoints_are_ignored(tmp_path):
    fx = load_fixture(FINETUNED)
    state = dict(fx["state_dict"])
    for i in range(3):
        state[f"encoder.layer.{i}.attention.attention.relative_position_bias.relative_position_index"] = (
            torch.zeros(65, 65, dtype=torch.long)
        )
    (tmp_path / "config.json").write_text(json.dumps({**fx["config"], "model_type": "data2vec-vision"}))
    save_file(state, tmp_path / "model.safetensors")
    encoder = Data2VecVisionEncoder.from_huggingface(tmp_path).eval()
    assert_outputs_match(encoder, fx["expected"], fx["inputs"]["pixel_values"])


def test_to_huggingface_loads_in_transformers_with_the_same_outputs(fixture, tmp_path, fixture_encoder):
    encoder = fixture_encoder(Data2VecVisionEncoder, fixture)
    encoder.to_huggingface(tmp_path)
    assert not (tmp_path / "preprocessor_config.json").exists()
    model = transformers.AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(model) is transformers.Data2VecVisionModel
    pixels = fixture["inputs"]["pixel_values"]
    with torch.no_grad():
        out = model(pixels, output_hidden_states=True)
        pooled = transformers.Data2VecVisionModel.from_pretrained(tmp_path, add_pooling_layer=True).eval()(
            pixels
        )
        ours = encoder.pool(encoder(pixels)[0])
    assert_outputs_match(encoder, {"hidden_states": out.hidden_states, **out}, pixels)
    if encoder.config.use_mean_pooling:
        assert_close(ours, pooled.pooler_output, **TOLERANCE)


def test_round_trip_through_a_directory_is_exact(fixture, tmp_path, fixture_encoder, assert_same_weights):
    encoder = fixture_encoder(
        Data2VecVisionEncoder, fixture, pixel_mean=IMAGENET_MEAN, pixel_std=IMAGENET_STD
    )
    restored = Data2VecVisionEncoder.from_huggingface(encoder.to_huggingface(tmp_path)).eval()
    assert restored.config == encoder.config
    assert_same_weights(encoder, restored)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(restored(images)[0], encoder(images)[0])
        assert torch.equal(restored.pool(restored(images)[0]), encoder.pool(encoder(images)[0]))


def test_to_huggingface_writes_the_image_processor_of_the_pixel_statistics(tmp_path, fixture_encoder):
    fx = load_fixture(PRETRAINED)
    mean, std = (0.2, 0.5, 0.7), (0.25, 0.5, 2.0)
    encoder = fixture_encoder(Data2VecVisionEncoder, fx, pixel_mean=mean, pixel_std=std)
    encoder.to_huggingface(tmp_path)
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path)
    assert "Beit" in type(processor).__name__
    assert list(processor.image_mean) == list(mean) and list(processor.image_std) == list(std)
    assert (processor.size.height, processor.size.width) == (32, 32)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    pixels = processor(images=image, return_tensors="pt")["pixel_values"]
    # [0, 255] -> (x / 255 - mean) / std, worked per channel
    expected = (image.float() / 255 - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    assert_close(pixels[0], expected, atol=1e-5, rtol=1e-5)
    model = transformers.AutoModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    with torch.no_grad():
        assert_close(encoder(image[None].float() / 255)[0], model(pixels).last_hidden_state, **TOLERANCE)


# 16 x 8 patches (rows x cols) of 4 x 4 pixels, one channel, a mask token and both relative biases
NON_SQUARE = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=24,
    image_size=(64, 32),
    patch_size=4,
    num_channels=1,
    use_mask_token=True,
    use_relative_position_bias=True,
    use_shared_relative_position_bias=True,
    drop_path_rate=0.0,
)


def test_a_non_square_grid_loads_in_transformers_with_the_same_outputs(tmp_path, assert_same_weights):
    encoder = perturbed_encoder(Data2VecVisionConfig(**NON_SQUARE, pixel_mean=(0.25,), pixel_std=(0.5,)))
    assert encoder.grid == (16, 8) and encoder.num_patches == 128
    encoder.to_huggingface(tmp_path / "ours")
    written = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert written["image_size"] == [32, 64] and written[HF_IMAGE_SIZE_KEY] == [64, 32]
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "ours")
    assert (processor.size.height, processor.size.width) == (64, 32)
    model = transformers.AutoModel.from_pretrained(
        tmp_path / "ours", attn_implementation="eager", add_pooling_layer=True
    ).eval()
    images = torch.rand(2, 1, 64, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 128, dtype=torch.bool)
    mask[0, 8:40] = True  # rows 1-4
    mask[1, ::8] = True  # column 0
    with torch.no_grad():
        expected = model((images - 0.25) / 0.5, output_hidden_states=True)
        masked = model((images - 0.25) / 0.5, bool_masked_pos=mask).last_hidden_state
        ours_masked = encoder.encode_tokens(encoder.embed_tokens(images)[0], mask=mask).output
    assert_outputs_match(encoder, {"hidden_states": expected.hidden_states, **expected}, images)
    assert_close(ours_masked, masked, **TOLERANCE)
    # exact round trips: our directory, and transformers' own save_pretrained of it (which keeps the record)
    model.save_pretrained(tmp_path / "theirs")
    for folder in ("ours", "theirs"):
        restored = Data2VecVisionEncoder.from_huggingface(tmp_path / folder).eval()
        assert restored.config.image_size == (64, 32) and restored.grid == (16, 8)
        assert_same_weights(encoder, restored)
        with torch.no_grad():
            assert torch.equal(restored(images)[0], encoder(images)[0])


def test_a_non_square_model_saved_by_transformers_loads_with_a_warning(tmp_path):
    model = perturbed_hf_model({**NON_SQUARE, "image_size": [64, 32]})
    model.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="resamples its relative position table"):
        encoder = Data2VecVisionEncoder.from_huggingface(tmp_path).eval()
    assert encoder.grid == (16, 8)
    images = torch.randn(2, 1, 64, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = encoder(images)[0]
        theirs = model(images).last_hidden_state
    # transformers 5.25 resamples a non-square table (if this starts to fail, transformers runs non-square
    # grids as BEiT does and to_huggingface no longer needs to transpose image_size)
    assert (ours - theirs).abs().max() > 1e-2
    # the same weights, declared transposed, run in transformers as the encoder runs them
    transposed = transformers.Data2VecVisionConfig(**{**NON_SQUARE, "image_size": [32, 64]})
    transposed._attn_implementation = "eager"
    declared = transformers.Data2VecVisionModel(transposed, add_pooling_layer=True).eval()
    declared.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert_close(declared(images).last_hidden_state, ours, **TOLERANCE)


def test_non_square_directories_that_transformers_cannot_run_are_refused(tmp_path):
    encoder = Data2VecVisionEncoder(RECTANGULAR_CONFIG)  # absolute positions
    with pytest.raises(ValueError, match=r"absolute position embeddings on a non-square 16 x 8 image"):
        encoder.to_huggingface(tmp_path)
    written = {**dataclasses.asdict(RECTANGULAR_CONFIG), "image_size": [16, 8], HF_IMAGE_SIZE_KEY: [16, 8]}
    with pytest.raises(
        ValueError, match=r"ssl_lightning_image_size=\[16, 8\] must be image_size=\[16, 8\] trans"
    ):
        Data2VecVisionEncoder.config_from_huggingface(written)


def test_directories_of_another_model_or_without_weights_are_refused(tmp_path):
    fx = load_fixture(FINETUNED)
    hf_model_of(fx, add_pooling_layer=True).save_pretrained(tmp_path / "vision")
    config = json.loads((tmp_path / "vision" / "config.json").read_text())
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "config.json").write_text(json.dumps({**config, "model_type": "data2vec-audio"}))
    with pytest.raises(ValueError, match="'data2vec-audio' model, not 'data2vec-vision'"):
        Data2VecVisionEncoder.from_huggingface(tmp_path / "audio")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="has no weights"):
        Data2VecVisionEncoder.from_huggingface(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Data2VecVisionEncoder.from_huggingface(tmp_path / "nowhere")
    # the weights of another layout: per-layer tables where one shared table is expected
    pretrained = Data2VecVisionEncoder(
        Data2VecVisionEncoder.config_from_huggingface(load_fixture(PRETRAINED)["config"])
    )
    with pytest.raises(
        ValueError, match=r"finetuned.safetensors .*missing \['embeddings.mask_token', 'encoder.rel"
    ):
        pretrained.load_hf_state_dict(fx["state_dict"], "finetuned.safetensors")


# --- construction ------------------------------------------------------------------------------------------


def test_presets_and_the_ssl_attributes():
    base, large = Data2VecVisionConfig.base(), Data2VecVisionConfig.large()

    def sizes(config):
        return (
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size,
        )

    assert sizes(base) == (768, 12, 12, 3072) and sizes(large) == (1024, 24, 16, 4096)
    assert (
        base.use_mask_token and base.use_shared_relative_position_bias and not base.use_relative_position_bias
    )
    assert not base.use_mean_pooling and base.layer_scale_init_value == 1e-4 and base.drop_path_rate == 0.25
    assert base.pixel_mean == (0.485, 0.456, 0.406) and base.pixel_std == (0.229, 0.224, 0.225)
    assert (large.layer_scale_init_value, large.drop_path_rate) == (1e-5, 0.2)
    encoder = Data2VecVisionEncoder(dataclasses.replace(base, num_hidden_layers=1))
    assert encoder.mask_embedding == "embeddings.mask_token"
    assert dict(encoder.named_parameters())[encoder.mask_embedding].shape == (1, 1, 768)
    assert (
        encoder.modality == "vision" and encoder.ema_skip_keys == () and not encoder.teacher_shares_front_end
    )
    assert encoder.pretraining_unused == ("pooler",) and encoder.embed_dim == 768 and encoder.num_layers == 1
    assert torch.equal(encoder.encoder.layer[0].lambda_1, torch.full((768,), 1e-4))
    assert Data2VecVisionEncoder.hf_architecture == "Data2VecVisionModel"


def test_initialisation_follows_transformers():
    torch.manual_seed(0)
    config = Data2VecVisionConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256, image_size=16,
        patch_size=4, use_mask_token=True, use_shared_relative_position_bias=True, layer_scale_init_value=0.3,
        initializer_range=0.05,
    )  # fmt: skip
    encoder = Data2VecVisionEncoder(config)
    layer = encoder.encoder.layer[1]
    for linear in (layer.intermediate.dense, layer.output.dense):
        assert abs(linear.weight.std().item() - 0.05) < 0.002 and abs(linear.weight.mean().item()) < 0.002
        assert torch.equal(linear.bias, torch.zeros_like(linear.bias))
    assert layer.attention.attention.key.bias is None
    assert torch.equal(layer.layernorm_after.weight, torch.ones(64))
    assert torch.equal(layer.lambda_2, torch.full((64,), 0.3))
    for zero in (encoder.embeddings.cls_token, encoder.embeddings.mask_token):
        assert torch.equal(zero, torch.zeros(1, 1, 64))
    table = encoder.encoder.relative_position_bias.relative_position_bias_table
    assert torch.equal(table, torch.zeros(7 * 7 + 3, 4))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num_attention_heads": 5}, "must divide hidden_size=768"),
        ({"pixel_mean": (0.5, 0.5, 0.5)}, "set both pixel_mean and pixel_std"),
        ({"pixel_mean": (0.5, 0.5), "pixel_std": (1.0, 1.0)}, "one value per channel"),
        ({"hidden_act": "glu"}, "hidden_act='glu' is not supported"),
        ({"drop_path_rate": 1.0}, r"drop_path_rate must be in \[0, 1\)"),
        ({"image_size": 0}, "image_size must be a positive int"),
        ({"image_size": (32, 0)}, r"image_size must be a positive int or a pair \(height, width\)"),
        ({"image_size": (32,)}, r"image_size must be a positive int or a pair \(height, width\)"),
        ({"image_size": (64, 8), "patch_size": 16}, r"patch_size=16 exceeds image_size=\(64, 8\)"),
    ],
)
def test_bad_configs_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        Data2VecVisionConfig(**fields)


def test_group_matcher_groups_stem_blocks_and_the_top():
    encoder = Data2VecVisionEncoder(Data2VecVisionConfig(**{**OPTIONS_CONFIG, "use_mean_pooling": True}))
    groups = list(group_parameters(encoder, encoder.group_matcher()).values())
    assert sorted(name for group in groups for name in group) == sorted(
        name for name, _ in encoder.named_parameters()
    )
    assert len(groups) == 4  # stem, 2 blocks, top
    assert set(groups[0]) == {
        "embeddings.cls_token",
        "embeddings.position_embeddings",
        "embeddings.patch_embeddings.projection.weight",
        "embeddings.patch_embeddings.projection.bias",
    }
    assert all(name.startswith("encoder.layer.0.") for name in groups[1])
    assert all(name.startswith("encoder.layer.1.") for name in groups[2])
    assert set(groups[3]) == {
        "encoder.relative_position_bias.relative_position_bias_table",
        "pooler.layernorm.weight",
        "pooler.layernorm.bias",
    }


def test_jsonargparse_builds_the_encoder_from_yaml_values(encoder_from_yaml):
    init_args = yaml.safe_load(
        """
        config: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64,
                 image_size: [32, 16], patch_size: 8, use_mask_token: true,
                 pixel_mean: [0.5, 0.5, 0.5], pixel_std: [0.25, 0.25, 0.25]}
        """
    )
    encoder = encoder_from_yaml("ssl_lightning.backbones.data2vec_vision.Data2VecVisionEncoder", init_args)
    assert isinstance(encoder, Data2VecVisionEncoder)
    assert encoder.config.pixel_std == (0.25, 0.25, 0.25) and encoder.config.image_size == (32, 16)
    assert encoder.grid == (4, 2)
    features, _ = encoder.eval()(torch.rand(2, 3, 32, 16))
    assert features.shape == (2, 9, 32)
