"""Data2VecSpectrogramEncoder: the BEATs fbank image (cropped / zero-padded to num_frames), its patches
against torchaudio's Kaldi fbank and a per-patch product, transformers on the fbank image both ways, kept
patches on the (frames / 16) x 8 grid through transformers' own blocks, presets, errors and YAML."""

import dataclasses
import json

import pytest
import torch
import torchaudio.compliance.kaldi as ta_kaldi
import transformers
import yaml
from torch.testing import assert_close

from ssl_lightning.backbones.data2vec_spectrogram import Data2VecSpectrogramConfig, Data2VecSpectrogramEncoder

TOLERANCE = {"atol": 1e-5, "rtol": 1e-4}
# the pre-training layout of base() at toy width
TINY = dict(
    hidden_size=16,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=32,
    use_mask_token=True,
    use_shared_relative_position_bias=True,
    use_mean_pooling=False,
    layer_scale_init_value=0.1,
    drop_path_rate=0.0,
)


def tiny_encoder(num_frames: int, **fields) -> Data2VecSpectrogramEncoder:
    """A toy encoder (eval) with every parameter moved off its init."""
    torch.manual_seed(0)
    encoder = Data2VecSpectrogramEncoder(
        Data2VecSpectrogramConfig(**{**TINY, **fields}, num_frames=num_frames)
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return encoder.eval()


def clips(batch: int, seconds: float, seed: int = 0) -> torch.Tensor:
    return 0.1 * torch.randn(batch, int(16000 * seconds), generator=torch.Generator().manual_seed(seed))


def reference_image(waveform: torch.Tensor, num_frames: int) -> torch.Tensor:
    """BEATs' front-end written out with torchaudio, one clip at a time: Kaldi fbank of the int16-scaled
    waveform, (x - 15.41663) / (2 * 6.55582), the first `num_frames` frames, zero frames after them."""
    images = []
    for clip in waveform:
        fbank = ta_kaldi.fbank(
            clip[None] * 32768, num_mel_bins=128, sample_frequency=16000, frame_length=25, frame_shift=10
        )
        fbank = (fbank - 15.41663) / (2 * 6.55582)
        fbank = torch.cat([fbank[:num_frames], torch.zeros(max(num_frames - len(fbank), 0), 128)])
        images.append(fbank)
    return torch.stack(images)[:, None]


# --- the fbank image and its patches -----------------------------------------------------------------------


def test_a_10_s_clip_fills_the_1024_x_128_image_of_64_x_8_patches():
    encoder = tiny_encoder(1024, num_hidden_layers=1)
    assert encoder.config.image_size == (1024, 128) and encoder.config.num_channels == 1
    assert encoder.grid == (64, 8) and encoder.num_patches == 512
    waveform = clips(2, 10.0)
    with torch.no_grad():
        image = encoder.spectrogram(waveform)
        tokens, token_padding = encoder.embed_tokens(waveform)
        features, padding = encoder(waveform)
        encoded = encoder.encode_tokens(tokens)
    # 10 s = 998 frames: 26 zero frames complete the image
    assert image.shape == (2, 1, 1024, 128)
    assert_close(image, reference_image(waveform, 1024), atol=2e-5, rtol=1e-5)
    assert torch.equal(image[:, :, 998:], torch.zeros(2, 1, 26, 128)) and image[:, :, 997].abs().min() > 0
    assert tokens.shape == (2, 512, 16) and token_padding is None and padding is None
    assert features.shape == (2, 513, 16) and torch.equal(encoded.output, features)
    # pool: the mean patch token (CLS excluded)
    assert_close(encoder.pool(features), features[:, 1:].sum(dim=1) / 512, atol=1e-6, rtol=1e-6)


def test_patch_tokens_are_the_fbank_patches_times_the_projection():
    encoder = tiny_encoder(128)
    waveform = clips(2, 2.0, seed=1)  # 198 frames, cropped to the first 128
    image = reference_image(waveform, 128)
    weight = encoder.embeddings.patch_embeddings.projection.weight.detach().flatten(1)  # [D, 16 * 16]
    bias = encoder.embeddings.patch_embeddings.projection.bias.detach()
    with torch.no_grad():
        tokens, _ = encoder.embed_tokens(waveform)
    assert encoder.grid == (8, 8) and tokens.shape == (2, 64, 16)
    # patch (time row r, mel col c) is token 8 r + c
    for row, col in [(0, 0), (0, 7), (3, 2), (7, 0), (7, 7)]:
        patch = image[:, 0, 16 * row : 16 * row + 16, 16 * col : 16 * col + 16].flatten(1)
        assert_close(tokens[:, 8 * row + col], patch @ weight.T + bias, atol=1e-4, rtol=1e-4)


def test_long_clips_keep_their_start_and_short_ones_get_zero_frames():
    encoder = tiny_encoder(128)
    two_seconds = clips(1, 2.0, seed=2)
    longer = torch.cat([two_seconds, clips(1, 1.0, seed=3)], dim=1)
    with torch.no_grad():
        image, longer_image = encoder.spectrogram(two_seconds), encoder.spectrogram(longer)
        assert torch.equal(encoder(longer)[0], encoder(two_seconds)[0])
    assert torch.equal(longer_image, image)
    assert_close(image, reference_image(two_seconds, 198)[:, :, :128], atol=2e-5, rtol=1e-5)
    # 1 s = 98 frames, then 30 zero frames
    short = encoder.spectrogram(clips(1, 1.0, seed=4))
    assert short.shape == (1, 1, 128, 128)
    assert torch.equal(short[:, :, 98:], torch.zeros(1, 1, 30, 128)) and short[:, :, 97].abs().min() > 0


def test_a_clip_padded_in_a_batch_encodes_as_it_does_alone():
    encoder = tiny_encoder(256)
    one_second, two_seconds = clips(1, 1.0, seed=5), clips(1, 2.0, seed=6)
    batch = torch.cat([torch.cat([one_second, torch.zeros(1, 16000)], dim=1), two_seconds])
    padding_mask = torch.zeros(2, 32000, dtype=torch.bool)
    padding_mask[0, 16000:] = True
    with torch.no_grad():
        image = encoder.spectrogram(batch, padding_mask)
        features, padding = encoder(batch, padding_mask)
        alone = encoder(one_second)[0]
        unmasked = encoder.spectrogram(batch)
    # frames 98 and 99 hold real and padded samples: zero, as they are missing from the clip alone
    assert torch.equal(image[0, :, 98:], torch.zeros(1, 158, 128)) and unmasked[0, 0, 98:100].abs().min() > 0
    assert_close(image[:1], reference_image(one_second, 256), atol=2e-5, rtol=1e-5)
    assert_close(image[1:], reference_image(two_seconds, 256), atol=2e-5, rtol=1e-5)
    assert padding is None
    assert_close(features[:1], alone, atol=1e-5, rtol=1e-5)


# --- transformers on the fbank image ------------------------------------------------------------------------


def test_to_huggingface_runs_in_transformers_on_the_fbank_image_and_round_trips_exactly(
    tmp_path, assert_same_weights
):
    encoder = tiny_encoder(256)  # 16 x 8 patches
    encoder.to_huggingface(tmp_path / "ours")
    written = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert written["model_type"] == "data2vec-vision" and written["num_channels"] == 1
    # transformers' window is declared transposed (see data2vec_vision), the true size recorded
    assert written["image_size"] == [128, 256] and written["ssl_lightning_image_size"] == [256, 128]
    model = transformers.AutoModel.from_pretrained(tmp_path / "ours", attn_implementation="eager").eval()
    waveform = clips(2, 2.0, seed=7)
    with torch.no_grad():
        image = encoder.spectrogram(waveform)
        expected = model(pixel_values=image, output_hidden_states=True)
        features, _ = encoder(waveform)
        hidden = encoder.hidden_states(waveform)
    assert image.shape == (2, 1, 256, 128)
    assert_close(features, expected.last_hidden_state, **TOLERANCE)
    assert len(hidden) == len(expected.hidden_states) == 3
    for got, want in zip(hidden, expected.hidden_states, strict=True):
        assert_close(got, want, **TOLERANCE)
    model.save_pretrained(tmp_path / "theirs")
    for folder in ("ours", "theirs"):
        restored = Data2VecSpectrogramEncoder.from_huggingface(tmp_path / folder).eval()
        assert type(restored.config) is Data2VecSpectrogramConfig and restored.config == encoder.config
        assert restored.grid == (16, 8)
        assert_same_weights(encoder, restored)
        with torch.no_grad():
            assert torch.equal(restored(waveform)[0], features)


def test_keep_index_on_the_16_x_8_grid_equals_transformers_blocks_on_the_kept_patches(tmp_path):
    """data2vec 2.0's student pass: CLS + the kept patches through transformers' own blocks, with the rows and
    columns of transformers' full shared bias that belong to them."""
    encoder = tiny_encoder(256)
    model = transformers.AutoModel.from_pretrained(
        encoder.to_huggingface(tmp_path), attn_implementation="eager"
    ).eval()
    waveform = clips(2, 2.5, seed=8)
    # row 0: patches along time in mel column 0 and the last time row; row 1: one time row and scattered
    keep_index = torch.tensor([[0, 8, 16, 120, 121, 127], [40, 41, 42, 43, 47, 99]])
    with torch.no_grad():
        tokens, _ = encoder.embed_tokens(waveform)
        visible = encoder.encode_tokens(tokens, keep_index=keep_index)
        patches = model.embeddings.patch_embeddings(encoder.spectrogram(waveform))[0]
        full_bias = model.encoder.relative_position_bias((16, 8))[0]  # [heads, 129, 129]
        for b in range(2):
            positions = torch.cat([torch.zeros(1, dtype=torch.long), keep_index[b] + 1])
            bias = full_bias[:, positions][:, :, positions][None]
            h = torch.cat([model.embeddings.cls_token[0], patches[b, keep_index[b]]])[None]
            for layer in model.encoder.layer:
                h = layer(h, relative_position_bias=bias)[0]
            assert_close(visible.output[b], model.layernorm(h)[0], **TOLERANCE)
    assert visible.output.shape == (2, 7, 16) and visible.num_extra_tokens == 1


# --- construction and errors --------------------------------------------------------------------------------


def test_presets_are_vit_on_the_1024_x_128_image():
    base, large = Data2VecSpectrogramConfig.base(), Data2VecSpectrogramConfig.large()
    for config, sizes in ((base, (768, 12, 12, 3072)), (large, (1024, 24, 16, 4096))):
        assert type(config) is Data2VecSpectrogramConfig
        assert (
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
            config.intermediate_size,
        ) == sizes
        assert config.num_frames == 1024 and config.image_size == (1024, 128) and config.num_channels == 1
        assert config.patch_size == 16 and config.pixel_mean is None and config.pixel_std is None
        assert config.use_mask_token and config.use_shared_relative_position_bias
        assert not config.use_relative_position_bias and not config.use_mean_pooling
    assert (base.layer_scale_init_value, base.drop_path_rate) == (1e-4, 0.25)
    encoder = Data2VecSpectrogramEncoder(dataclasses.replace(base, num_hidden_layers=1))
    assert encoder.grid == (64, 8) and encoder.embed_dim == 768
    assert encoder.modality == "vision" and encoder.mask_embedding == "embeddings.mask_token"
    assert encoder.hf_model_type == "data2vec-vision" and encoder.hf_architecture == "Data2VecVisionModel"
    table = encoder.encoder.relative_position_bias.relative_position_bias_table
    assert table.shape == ((2 * 64 - 1) * (2 * 8 - 1) + 3, 12)
    assert Data2VecSpectrogramEncoder().config == Data2VecSpectrogramConfig()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num_frames": 0}, r"num_frames must be a positive int \(1024 for 10 s clips\), got 0"),
        (
            {"num_frames": 1000},
            r"num_frames=1000 .* multiples of patch_size=16; pick num_frames = 992 or 1008",
        ),
        ({"image_size": (512, 128)}, r"image_size=\(512, 128\) must be \(num_frames, 128\) = \(1024, 128\)"),
        ({"num_channels": 3}, "num_channels must be 1"),
        ({"pixel_mean": (0.5,), "pixel_std": (0.5,)}, "set pixel_mean and pixel_std to None"),
        ({"hidden_size": 30}, "must divide hidden_size=30"),
    ],
)
def test_bad_configs_are_named(fields, message):
    with pytest.raises(ValueError, match=message):
        Data2VecSpectrogramConfig(**fields)


def test_bad_inputs_and_directories_are_named(tmp_path):
    encoder = tiny_encoder(128)
    with pytest.raises(ValueError, match=r"waveform must be a float tensor \[B, T\]"):
        encoder(torch.zeros(2, 1, 32000))
    with pytest.raises(ValueError, match="padding_mask must be a bool tensor shaped like the waveform"):
        encoder(torch.zeros(2, 32000), torch.zeros(2, 16000, dtype=torch.bool))
    with pytest.raises(ValueError, match="fewer than one 25.0 ms frame"):
        encoder(torch.zeros(2, 300))
    with pytest.raises(ValueError, match=r"tokens must be \[B, 64, 16\]"):
        encoder.encode_tokens(torch.zeros(2, 63, 16))
    # an RGB data2vec-vision model is not a spectrogram model
    rgb = transformers.Data2VecVisionConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, image_size=32
    )
    transformers.Data2VecVisionModel(rgb).save_pretrained(tmp_path / "rgb")
    with pytest.raises(ValueError, match=r"image_size=32 must be \(num_frames, 128\) = \(1024, 128\)"):
        Data2VecSpectrogramEncoder.from_huggingface(tmp_path / "rgb")
    config = json.loads((tmp_path / "rgb" / "config.json").read_text())
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "config.json").write_text(json.dumps({**config, "model_type": "data2vec-audio"}))
    with pytest.raises(ValueError, match="'data2vec-audio' model, not 'data2vec-vision'"):
        Data2VecSpectrogramEncoder.from_huggingface(tmp_path / "audio")


def test_jsonargparse_builds_the_encoder_from_yaml_values(encoder_from_yaml):
    init_args = yaml.safe_load(
        """
        config: {num_frames: 128, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 4,
                 intermediate_size: 64, use_mask_token: true, use_shared_relative_position_bias: true}
        """
    )
    encoder = encoder_from_yaml(
        "ssl_lightning.backbones.data2vec_spectrogram.Data2VecSpectrogramEncoder", init_args
    )
    assert isinstance(encoder, Data2VecSpectrogramEncoder)
    assert encoder.config.image_size == (128, 128) and encoder.grid == (8, 8)
    features, _ = encoder.eval()(clips(2, 2.0))
    assert features.shape == (2, 65, 32)
