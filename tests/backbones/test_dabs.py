"""DabsTransformer: embedding modules per input spec (token counts, DABS's flatten orders pinned on worked
examples), the pre-norm blocks against an attention written out by hand, parameter counts against a count
from the architecture, forward shapes and pooling."""

import pytest
import torch
from torch import nn

from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.nn.input_specs import InputSpec

TEXT = InputSpec("text", "tokens", 6, vocab_size=50)
SENSOR = InputSpec("sensor", "1d", 12, patch_size=3, in_channels=2)
IMAGE = InputSpec("image", "2d", (8, 4), patch_size=2, in_channels=3)
TINY = {"dim": 16, "depth": 2, "heads": 2, "dim_head": 4, "mlp_dim": 24}


def batch_of(specs: list[InputSpec], size: int = 3) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = {}
    for spec in specs:
        if spec.kind == "tokens":
            batch[spec.name] = torch.randint(spec.vocab_size, (size, spec.size), generator=generator)
        else:
            shape = (spec.size, spec.in_channels) if spec.kind == "1d" else (spec.in_channels, *spec.size)
            batch[spec.name] = torch.randn(size, *shape, generator=generator)
    return batch


def identity_projections(model: DabsTransformer) -> None:
    """Make every Linear embedding module copy its flattened patch into the first entries of the token."""
    with torch.no_grad():
        for module in model.embed_modules:
            if isinstance(module.embed, nn.Linear):
                module.embed.weight.copy_(torch.eye(*module.embed.weight.shape))
                module.embed.bias.zero_()


@pytest.mark.parametrize(("spec", "tokens"), [(TEXT, 6), (SENSOR, 4), (IMAGE, 8)], ids=["tokens", "1d", "2d"])
def test_each_spec_gives_its_number_of_tokens(spec, tokens):
    model = DabsTransformer([spec], **TINY)
    assert model.embed_inputs(batch_of([spec])).shape == (3, tokens, 16)
    assert model.num_tokens == tokens


def test_2d_patches_flatten_as_row_column_channel_in_row_major_patch_order():
    spec = InputSpec("image", "2d", (4, 4), patch_size=2, in_channels=3)
    model = DabsTransformer([spec], dim=12, depth=1, heads=2, dim_head=6).eval()
    identity_projections(model)
    c, y, x = torch.meshgrid(torch.arange(3), torch.arange(4), torch.arange(4), indexing="ij")
    image = (100 * c + 10 * y + x).float()[None]  # the value names its (channel, row, column)
    tokens = model.embed_inputs({"image": image})[0]
    # patch 1 is rows 0-1, columns 2-3; vector position (p1 * 2 + p2) * 3 + c
    assert tokens[1].tolist() == [2, 102, 202, 3, 103, 203, 12, 112, 212, 13, 113, 213]
    # patch 2 is rows 2-3, columns 0-1
    assert tokens[2].tolist() == [20, 120, 220, 21, 121, 221, 30, 130, 230, 31, 131, 231]


def test_1d_segments_flatten_as_step_channel():
    spec = InputSpec("sensor", "1d", 6, patch_size=3, in_channels=2)
    model = DabsTransformer([spec], dim=6, depth=1, heads=1, dim_head=4).eval()
    identity_projections(model)
    t, c = torch.meshgrid(torch.arange(6), torch.arange(2), indexing="ij")
    tokens = model.embed_inputs({"sensor": (10 * t + c).float()[None]})[0]
    assert tokens.tolist() == [[0, 1, 10, 11, 20, 21], [30, 31, 40, 41, 50, 51]]


def test_inputs_are_concatenated_in_spec_order():
    model = DabsTransformer([TEXT, IMAGE], **TINY)
    batch = batch_of([TEXT, IMAGE])
    tokens = model.embed_inputs(batch)
    table = model.embed_modules[0].embed.weight
    torch.testing.assert_close(tokens[:, :6], table[batch["text"]])
    patches = batch["image"].unfold(2, 2, 2).unfold(3, 2, 2)  # [B, C, h, w, p1, p2]
    vectors = patches.permute(0, 2, 3, 4, 5, 1).reshape(3, 8, 12)
    torch.testing.assert_close(tokens[:, 6:], model.embed_modules[1].embed(vectors))


def attention_by_hand(block, x: torch.Tensor, heads: int, dim_head: int) -> torch.Tensor:
    """The official `Attention.forward` written out: qkv chunks, heads as (h d), softmax(q k^T * scale)."""
    q, k, v = block.attn.to_qkv(x).chunk(3, dim=-1)
    split = [t.view(*t.shape[:2], heads, dim_head).transpose(1, 2) for t in (q, k, v)]
    weights = torch.softmax(split[0] @ split[1].transpose(-1, -2) * dim_head**-0.5, dim=-1)
    out = (weights @ split[2]).transpose(1, 2).reshape(*x.shape[:2], heads * dim_head)
    return block.attn.to_out(out)


def test_blocks_are_pre_norm_and_attention_matches_the_official_formula():
    model = DabsTransformer([SENSOR], **TINY).eval()
    block = model.blocks[0]
    x = torch.randn(2, 5, 16)
    after_attn = x + attention_by_hand(block, block.attn_norm(x), heads=2, dim_head=4)
    expected = after_attn + block.ffn(block.ffn_norm(after_attn))
    torch.testing.assert_close(block(x), expected)
    assert block.attn.to_qkv.bias is None and block.attn.to_qkv.out_features == 3 * 2 * 4


def test_cls_first_positions_added_and_no_final_norm():
    model = DabsTransformer([SENSOR], **TINY).eval()
    with torch.no_grad():
        for block in model.blocks:  # blocks that add nothing: the output is what enters them
            for linear in (block.attn.to_out[0], block.ffn[3]):
                linear.weight.zero_()
                linear.bias.zero_()
    tokens = torch.randn(2, 4, 16)
    out = model.encode_embeddings(tokens)
    torch.testing.assert_close(out[:, 0], model.cls_token[0, 0].expand(2, -1) + model.pos_embedding[0, 0])
    torch.testing.assert_close(out[:, 1:], tokens + model.pos_embedding[:, 1:])


def test_embedding_dropout_acts_in_training_only():
    model = DabsTransformer([SENSOR], **{**TINY, "depth": 0}, emb_dropout=0.5)
    tokens = torch.randn(2, 4, 16)
    assert (model.train().encode_embeddings(tokens) == 0).any()
    assert not (model.eval().encode_embeddings(tokens) == 0).any()


def count_by_architecture(specs, dim, depth, heads, dim_head, mlp_dim) -> int:
    """Parameters written out from DABS's architecture (no head: it lives in the methods)."""
    inner = heads * dim_head
    layer_norm = 2 * dim
    attention = dim * 3 * inner + inner * dim + dim  # qkv (no bias), output projection
    ffn = dim * mlp_dim + mlp_dim + mlp_dim * dim + dim
    blocks = depth * (2 * layer_norm + attention + ffn)
    embeddings = 0
    for spec in specs:
        if spec.kind == "tokens":
            embeddings += spec.vocab_size * dim
        else:
            patch = spec.patch_size * (1 if spec.kind == "1d" else spec.patch_size) * spec.in_channels
            embeddings += patch * dim + dim
    tokens = sum(spec.num_tokens for spec in specs)
    return blocks + embeddings + dim + (tokens + 1) * dim  # + CLS + positions


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_parameter_count_of_a_tiny_model_matches_the_architecture():
    specs = [TEXT, SENSOR, IMAGE]
    assert parameters(DabsTransformer(specs, **TINY)) == count_by_architecture(specs, **TINY)


@pytest.mark.parametrize(
    ("spec", "total"),
    [
        (InputSpec("image", "2d", (224, 224), patch_size=16, in_channels=3), 9_709_312),
        (InputSpec("sensor", "1d", 320, patch_size=5, in_channels=52), 9_545_472),
    ],
    ids=["image-224-16-3", "pamap2-320-5-52"],
)
def test_parameter_count_at_dabs_sizes(spec, total):
    defaults = {"dim": 256, "depth": 12, "heads": 8, "dim_head": 64, "mlp_dim": 512}
    model = DabsTransformer([spec])
    assert parameters(model) == count_by_architecture([spec], **defaults) == total


def test_forward_gives_all_tokens_and_pool_averages_them_with_cls():
    specs = [TEXT, SENSOR, IMAGE]
    model = DabsTransformer(specs, **TINY).eval()
    features, mask = model(batch_of(specs))
    assert features.shape == (3, 1 + 6 + 4 + 8, 16) and mask is None
    pooled = model.pool(features, None)
    torch.testing.assert_close(pooled, features.sum(dim=1) / 19)
    assert not torch.allclose(pooled, features[:, 1:].mean(dim=1))
    assert model.embed_dim == 16 and model.out_dim == 128


def test_bad_inputs_name_the_input_and_the_expected_shape():
    model = DabsTransformer([TEXT, IMAGE], **TINY)
    batch = batch_of([TEXT, IMAGE])
    with pytest.raises(KeyError, match="image"):
        model({"text": batch["text"]})
    with pytest.raises(ValueError, match=r"'image' \(2d\).*\[B, 3, 8, 4\]"):
        model({**batch, "image": batch["image"].transpose(2, 3)})
    with pytest.raises(ValueError, match="'text'.*int64 token ids"):
        model({**batch, "text": batch["text"].float()})
    with pytest.raises(ValueError, match="distinct names"):
        DabsTransformer([TEXT, TEXT])
