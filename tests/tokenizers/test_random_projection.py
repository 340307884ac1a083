"""Random-projection tokenizer: eq. 1 on a worked example, the encoder's patch order, frozen seeded state."""

import pytest
import torch

from ssl_lightning.backbones.beats import BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.tokenizers import RandomProjectionTokenizer

PATCH = 16


def chirps(batch: int = 8, samples: int = 32000, seed: int = 0) -> torch.Tensor:
    """Varied audio: chirps of random start frequency and level plus a little noise, `[B, T]`."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / 16000
    frequency = 100 * 2 ** (6 * torch.rand(batch, 1, generator=g))
    level = 0.5 * torch.rand(batch, 1, generator=g)
    noise = 0.05 * torch.rand(batch, 1, generator=g) * torch.randn(batch, samples, generator=g)
    return level * torch.sin(2 * torch.pi * frequency * t * (1 + t)) + noise


def worked_example_tokenizer() -> RandomProjectionTokenizer:
    """W x = (patch mean, top-half minus bottom-half mean over time); codewords (0,0), (1,0), (0,1), (3,0)."""
    tokenizer = RandomProjectionTokenizer(codebook_size=4, codebook_dim=2)
    mean = torch.full((PATCH, PATCH), 1.0 / PATCH**2)
    slope = torch.cat([torch.ones(PATCH // 2, PATCH), -torch.ones(PATCH // 2, PATCH)]) / (PATCH**2 / 2)
    tokenizer.projection.copy_(torch.stack([mean.flatten(), slope.flatten()]))
    tokenizer.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]]))
    return tokenizer


def test_eq1_labels_the_nearest_codeword_on_a_worked_example():
    """Patch (t, f) of a [1, 32, 128] fbank is label t * 8 + f. Hand-computed W x and nearest codeword:
    constant 0.1 -> (0.1, 0) -> v0; constant 0.9 -> (0.9, 0) -> v1; +1 then -1 over time -> (0, 2) -> v2
    (squared distances 4, 5, 1, 13); constant 2.2 -> (2.2, 0) -> v3 (0.64 against 1.44 for v1);
    constant 1.4 -> (1.4, 0) -> v1 (0.16 against 2.56 for v3): v3 has the larger inner product,
    so an inner-product tokenizer would say 3."""
    fbank = torch.zeros(1, 2 * PATCH, 8 * PATCH)

    def fill(t: int, f: int, top: float, bottom: float) -> None:
        rows = slice(t * PATCH, (t + 1) * PATCH)
        fbank[0, rows, f * PATCH : (f + 1) * PATCH] = torch.tensor([top] * 8 + [bottom] * 8)[:, None]

    for (t, f), (top, bottom) in {
        (0, 0): (0.1, 0.1),
        (0, 1): (0.9, 0.9),
        (0, 2): (1.0, -1.0),
        (1, 5): (2.2, 2.2),
        (1, 7): (1.4, 1.4),
    }.items():
        fill(t, f, top, bottom)
    labels = worked_example_tokenizer().labels_from_fbank(fbank)
    expected = torch.zeros(1, 16, dtype=torch.int64)
    expected[0, [1, 2, 8 + 5, 8 + 7]] = torch.tensor([1, 2, 3, 1])
    assert torch.equal(labels, expected)


def test_projection_of_patch_n_is_the_encoder_patch_n():
    """With the encoder's patch conv set to W, the input of its patch LayerNorm (the encoder's patches in
    its own order) equals the tokenizer's projections, for a clip whose frames do not fill the last patch."""
    tokenizer = RandomProjectionTokenizer(codebook_size=8, codebook_dim=12)
    config = BEATsEncoderConfig(
        embed_dim=12, encoder_layers=1, encoder_embed_dim=8, encoder_ffn_embed_dim=8,
        encoder_attention_heads=2, conv_pos=4, conv_pos_groups=2,
    )  # fmt: skip
    encoder = BEATsEncoder(config).eval()
    with torch.no_grad():
        encoder.patch_embedding.weight.copy_(tokenizer.projection.reshape(12, 1, PATCH, PATCH))
    captured = {}
    encoder.layer_norm.register_forward_pre_hook(lambda module, args: captured.update(patches=args[0]))
    waveform = chirps(batch=2, samples=37000)
    with torch.no_grad():
        features, _ = encoder(waveform)
        projected = tokenizer.project(tokenizer.fbank(waveform))
    assert projected.shape == captured["patches"].shape == (2, encoder.num_patches(37000), 12)
    torch.testing.assert_close(projected, captured["patches"], atol=1e-5, rtol=1e-5)
    assert tokenizer.extract_labels(waveform).shape == features.shape[:2]


def test_extract_labels_are_int64_in_range_and_use_many_codes():
    tokenizer = RandomProjectionTokenizer()
    labels = tokenizer.extract_labels(chirps())
    assert labels.shape == (8, 96) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() < 1024
    assert labels.unique().numel() > 64  # 126 measured: the codebook scale lets W x choose


def test_padding_mask_changes_no_label():
    waveform = chirps(batch=2)
    padding = torch.zeros_like(waveform, dtype=torch.bool)
    padding[1, 20000:] = True
    tokenizer = RandomProjectionTokenizer()
    assert torch.equal(tokenizer.extract_labels(waveform, padding), tokenizer.extract_labels(waveform))


def test_state_is_seeded_frozen_and_in_the_state_dict():
    first, same, other = (
        RandomProjectionTokenizer(seed=3),
        RandomProjectionTokenizer(seed=3),
        RandomProjectionTokenizer(),
    )
    assert torch.equal(first.projection, same.projection) and torch.equal(first.codebook, same.codebook)
    assert not torch.equal(first.codebook, other.codebook)
    assert list(first.parameters()) == []
    assert set(first.state_dict()) == {"projection", "codebook"}
    assert first.projection.shape == (256, 256) and first.codebook.shape == (1024, 256)
    other.load_state_dict(first.state_dict())
    waveform = chirps(batch=2)
    assert torch.equal(other.extract_labels(waveform), first.extract_labels(waveform))


def test_init_scales():
    tokenizer = RandomProjectionTokenizer(seed=1)
    assert tokenizer.projection.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.02)
    assert tokenizer.codebook.norm(dim=1).mean().item() == pytest.approx(1.0, rel=0.02)


@pytest.mark.parametrize(
    ("waveform", "padding_mask", "message"),
    [
        (torch.zeros(2, 3, 16000), None, r"waveform must be a float tensor \[B, T\]"),
        (torch.zeros(2, 16000, dtype=torch.int16), None, r"waveform must be a float tensor \[B, T\]"),
        (torch.zeros(2, 16000), torch.zeros(2, 100, dtype=torch.bool), "padding_mask must be a bool tensor"),
        (torch.zeros(2, 2000), None, "fewer than one 16-frame patch; pad clips to at least 2800 samples"),
    ],
)
def test_bad_input_is_rejected(waveform, padding_mask, message):
    with pytest.raises(ValueError, match=message):
        RandomProjectionTokenizer(codebook_size=4, codebook_dim=2).extract_labels(waveform, padding_mask)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codebook_size": 0}, "codebook_size must be a positive int"),
        ({"codebook_dim": 2.5}, "codebook_dim must be a positive int"),
        ({"patch_size": 12}, "patch_size=12 must divide the 128 mel bins"),
    ],
)
def test_bad_sizes_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandomProjectionTokenizer(**kwargs)
