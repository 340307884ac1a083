import pytest
import torch

from ssl_lightning.augment import ByolAViews
from ssl_lightning.backbones import AudioNTT2020, ByolAEncoder


def test_audio_ntt2020_matches_the_published_size_and_shapes():
    model = AudioNTT2020(n_mels=64, d=2048)
    assert sum(p.numel() for p in model.parameters()) == 5_321_856  # BYOL-A's d=2048 encoder
    out = model.eval()(torch.randn(2, 1, 64, 96))
    assert out.shape == (2, 12, 2048)


def test_encoder_contract_on_095_seconds():
    encoder = ByolAEncoder(d=32, channels=8).eval()
    wave = torch.randn(3, 15200) * 0.1  # 0.95 s -> 96 log-mel frames -> 12 output frames
    features, mask = encoder(wave)
    assert features.shape == (3, 12, 32) and mask is None
    assert encoder.embed_dim == 32


def test_frame_mask_marks_frames_whose_samples_are_all_padding():
    encoder = ByolAEncoder(d=16, channels=4).eval()
    padding = torch.zeros(2, 15200, dtype=torch.bool)
    padding[1, 7600:] = True  # second half of item 1 is padding
    _, mask = encoder(torch.randn(2, 15200), padding)
    assert mask.shape == (2, 12)
    assert not mask[0].any()
    # frame j pools spectrogram frames 8j..8j+7, centred at samples 1280j..1280j+1120
    assert mask[1].tolist() == [False] * 6 + [True] * 6


def test_pool_is_mean_plus_max_and_ignores_padding():
    encoder = ByolAEncoder(d=4, channels=4)
    v = torch.tensor([1.0, -2.0, 3.0, 0.5])
    frames = v.expand(2, 5, 4).clone()
    assert torch.allclose(encoder.pool(frames), 2 * v.expand(2, 4))
    frames[1, 3:] = 100.0
    mask = torch.tensor([[False] * 5, [False, False, False, True, True]])
    assert torch.allclose(encoder.pool(frames, mask), 2 * v.expand(2, 4))


def test_group_matcher_orders_layers_from_input_to_output():
    encoder = ByolAEncoder(d=8, channels=4)
    layer = encoder.group_matcher()
    assert layer("cnn.features.0.weight") == 1
    assert layer("cnn.features.5.weight") == 2
    assert layer("cnn.features.8.bias") == 3
    assert layer("cnn.fc.0.weight") == 4 and layer("cnn.fc.3.weight") == 5


def test_forward_is_encode_spectrogram_of_the_normalised_log_mel():
    encoder = ByolAEncoder(d=16, channels=4).eval()
    wave = torch.randn(2, 15200, generator=torch.Generator().manual_seed(0)) * 0.1
    spec = encoder.spectrogram(wave)
    assert spec.shape == (2, 96, 64)
    torch.testing.assert_close(spec, (encoder.frontend(wave) + 5.4919195) / 5.0389895)
    features, mask = encoder.encode_spectrogram(spec)
    assert mask is None and features.shape == (2, 12, 16)
    assert torch.equal(encoder(wave)[0], features)
    assert torch.equal(features, encoder.cnn(spec.mT[:, None]))  # [B, 1, mels, frames], as before the split


def test_encode_spectrogram_takes_byol_a_views_and_rejects_other_shapes():
    encoder = ByolAEncoder(d=16, channels=4)
    views = ByolAViews()
    spec = encoder.spectrogram(torch.randn(3, 32000) * 0.1)  # 2 s: 201 frames -> 96-frame views
    features, _ = encoder.encode_spectrogram(views(spec, torch.Generator().manual_seed(1)))
    assert features.shape == (3, 12, 16)
    with pytest.raises(ValueError, match=r"\[B, frames, 64\]"):
        encoder.encode_spectrogram(spec.mT)
