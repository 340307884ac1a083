"""The two-view framework: inputs and encoding by view domain, errors, the projection MLP."""

import pytest
import torch
from einops import rearrange
from torch import nn

from ssl_lightning.methods import BYOL, SimCLR
from ssl_lightning.methods.two_view import projection_mlp
from ssl_lightning.nn.losses import NTXentLoss, byol_pair_loss

FRAME = 16


pytestmark = pytest.mark.usefixtures("single_thread")


class TinySpectrogramEncoder(nn.Module):
    """`spectrogram`: 16-sample frames through a fixed basis, `[B, T] -> [B, T // 16, 4]`;
    `encode_spectrogram`: a linear map + ReLU per frame, `[B, F, 4] -> ([B, F, dim], None)`."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embed_dim = dim
        self.register_buffer("basis", torch.randn(FRAME, 4, generator=torch.Generator().manual_seed(0)))
        self.proj = nn.Linear(4, dim)

    def spectrogram(self, waveform):
        frames = rearrange(waveform[:, : waveform.shape[1] // FRAME * FRAME], "b (n k) -> b n k", k=FRAME)
        return (frames @ self.basis).abs().log1p()

    def encode_spectrogram(self, spec):
        return self.proj(spec).relu(), None

    def forward(self, waveform, padding_mask=None):
        return self.encode_spectrogram(self.spectrogram(waveform))[0], None


class CropSpectrogram(nn.Module):
    """Spectrogram views: a random 8-frame crop (one start for the batch) plus Gaussian noise."""

    domain = "spectrogram"

    def forward(self, spec, generator=None):
        start = int(torch.randint(0, spec.shape[1] - 7, (1,), generator=generator))
        crop = spec[:, start : start + 8]
        return crop + 0.1 * torch.randn(crop.shape, generator=generator)


class NoisyWaveform(nn.Module):
    """Waveform views: Gaussian noise added."""

    domain = "waveform"

    def forward(self, waveform, generator=None):
        return waveform + 0.1 * torch.randn(waveform.shape, generator=generator)


def _audio(batch: int = 6, samples: int = 320) -> dict[str, torch.Tensor]:
    audio = torch.randn(batch, samples, generator=torch.Generator().manual_seed(2))
    return {"audio": audio, "padding_mask": torch.zeros(batch, samples, dtype=torch.bool)}


def _simclr(encoder: nn.Module, views: nn.Module) -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(encoder, views, projection_dim=4, hidden_dim=16, temperature=0.5)


def test_spectrogram_views_come_from_the_encoders_spectrogram_and_are_encoded_by_encode_spectrogram():
    model = _simclr(TinySpectrogramEncoder(), CropSpectrogram()).eval()
    batch = _audio()
    spec = model.inputs(batch)
    torch.testing.assert_close(spec, model.encoder.spectrogram(batch["audio"]))
    assert spec.shape == (6, 20, 4)
    loss = model.two_view_loss(spec, torch.Generator().manual_seed(7))
    generator = torch.Generator().manual_seed(7)
    views = torch.cat([model.views(spec, generator), model.views(spec, generator)])
    assert views.shape == (12, 8, 4)
    z0, z1 = model.projector(model.encoder.proj(views).relu().mean(1)).chunk(2)
    torch.testing.assert_close(loss, NTXentLoss(0.5)(z0, z1))
    # the embedding is the un-augmented waveform path of the encoder (all 20 frames, no views)
    torch.testing.assert_close(model.embed(batch), model.encoder(batch["audio"])[0].mean(1))


def test_waveform_views_go_through_the_encoders_forward(tiny_encoder_cls):
    model = _simclr(tiny_encoder_cls(8), NoisyWaveform()).eval()
    batch = _audio(samples=640)
    assert model.inputs(batch) is batch["audio"]
    loss = model.two_view_loss(batch["audio"], torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    views = torch.cat([model.views(batch["audio"], generator), model.views(batch["audio"], generator)])
    z0, z1 = model.projector(model.encoder(views)[0].mean(1)).chunk(2)
    torch.testing.assert_close(loss, NTXentLoss(0.5)(z0, z1))


def test_byol_target_encodes_spectrogram_views_like_the_online_network():
    torch.manual_seed(0)
    model = BYOL(TinySpectrogramEncoder(), CropSpectrogram(), 4, 16, predictor_hidden_dim=16).eval()
    spec = model.inputs(_audio())
    views = CropSpectrogram()(spec, torch.Generator().manual_seed(1))
    online = model.projector(model.encoder.encode_spectrogram(views)[0].mean(1))
    torch.testing.assert_close(model.target_projection(views), online)  # the target starts as a copy
    loss = model.two_view_loss(spec, torch.Generator().manual_seed(4))
    generator = torch.Generator().manual_seed(4)
    a, b = model(torch.cat([model.views(spec, generator), model.views(spec, generator)])).chunk(2)
    torch.testing.assert_close(loss, byol_pair_loss(a.unbind(1), b.unbind(1)))


def test_trains_in_lightning_on_audio_batches_with_spectrogram_views(quiet_trainer):
    model = _simclr(TinySpectrogramEncoder(), CropSpectrogram())
    batch = _audio(8)
    data = torch.utils.data.DataLoader(
        [{"audio": a, "padding_mask": m} for a, m in zip(batch["audio"], batch["padding_mask"], strict=True)],
        batch_size=4,
    )
    trainer = quiet_trainer(max_steps=2)
    before = model.projector[0].weight.detach().clone()
    trainer.fit(model, train_dataloaders=data, val_dataloaders=data)
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert not torch.equal(before, model.projector[0].weight)


class NoDomain(nn.Module):
    def forward(self, x, generator=None):
        return x


class VideoViews(NoDomain):
    domain = "video"


def test_bad_view_makers_encoders_and_batches_raise(tiny_encoder_cls):
    with pytest.raises(ValueError, match=r"TinyEncoder lacks \['spectrogram', 'encode_spectrogram'\]"):
        SimCLR(tiny_encoder_cls(8), CropSpectrogram())
    with pytest.raises(ValueError, match="NoDomain with domain None"):
        SimCLR(tiny_encoder_cls(8), NoDomain())
    with pytest.raises(ValueError, match="VideoViews with domain 'video'"):
        SimCLR(tiny_encoder_cls(8), VideoViews())
    model = _simclr(tiny_encoder_cls(8), NoisyWaveform())
    with pytest.raises(
        ValueError, match=r"NoisyWaveform \(waveform views\) needs batches with 'audio' \[B, T\]"
    ):
        model.training_step({"image": torch.zeros(2, 3, 8, 8)}, 0)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 640\)"):
        model.training_step({"audio": torch.zeros(2, 1, 640)}, 0)


def test_projection_mlp_depths():
    assert [type(m).__name__ for m in projection_mlp(8, 16, 4, 0)] == ["Linear"]
    two = projection_mlp(8, 16, 4, 2)
    assert [type(m).__name__ for m in two] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    assert two(torch.randn(5, 8)).shape == (5, 4)
    with pytest.raises(ValueError, match="projector_hidden_layers"):
        projection_mlp(8, 16, 4, -1)
