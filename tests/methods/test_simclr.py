import pytest
import torch

from ssl_lightning.augment.image_views import ImageViews, color_jitter, random_resized_crop_flip
from ssl_lightning.backbones.image import TimmImageEncoder
from ssl_lightning.methods import load_method
from ssl_lightning.methods.simclr import SimCLR
from ssl_lightning.nn.losses.ntxent import NTXentLoss
from ssl_lightning.nn.optim import OptimizerConfig

TINY = {"channels": (4, 8, 16, 32), "stem_width": 4}


pytestmark = pytest.mark.usefixtures("single_thread")


def _model(views: ImageViews | None = None, **kwargs) -> SimCLR:
    torch.manual_seed(0)
    encoder = TimmImageEncoder("resnet18", model_kwargs=TINY)
    return SimCLR(encoder, views, projection_dim=8, hidden_dim=16, **kwargs)


def _images(batch: int = 8, size: int = 16) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


def test_crop_of_a_constant_image_is_constant_and_views_differ():
    constant = torch.rand(8, 3, 1, 1).expand(8, 3, 16, 16)
    crops = random_resized_crop_flip(constant, (0.2, 1.0), torch.Generator().manual_seed(0))
    torch.testing.assert_close(crops, constant)
    images = _images()
    views = ImageViews()
    v0, v1 = views(images), views(images)
    assert v0.shape == v1.shape == images.shape
    assert (v0 - v1).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    assert 0.0 <= v0.min() and v0.max() <= 1.0


def test_color_jitter_keeps_constant_images_constant_per_sample():
    images = torch.full((4, 3, 8, 8), 0.5)
    out = color_jitter(images, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(out, out[:, :1, :1, :1].expand_as(out))
    assert not torch.allclose(out, images)
    torch.testing.assert_close(color_jitter(images, strength=0.0), images)


def test_rq_only_when_configured_and_only_in_training():
    images = _images()
    assert ImageViews().rq is None
    views = ImageViews(rq_bins=2)
    view = views(images)
    assert all(torch.unique(view[b, c]).numel() <= 2 for b in range(8) for c in range(3))
    plain = ImageViews()(images)
    assert max(torch.unique(plain[b, 0]).numel() for b in range(8)) > 2
    views.eval()
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(views(images, gen_a), ImageViews().eval()(images, gen_b))


def test_loss_equals_ntxent_of_the_projections_of_both_views_in_one_pass():
    model = _model(temperature=0.2).eval()
    images = _images()
    loss = model.two_view_loss(images, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    views = torch.cat([model.views(images, gen), model.views(images, gen)])
    z0, z1 = model.projector(model.encoder(views)[0].mean(1)).chunk(2)
    torch.testing.assert_close(loss, NTXentLoss(0.2)(z0, z1))


def test_projector_depth_and_the_one_hidden_layer_state_dict_layout():
    default = _model().projector
    assert [type(m).__name__ for m in default] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert sorted(default.state_dict())[:2] == ["0.bias", "0.weight"] and "3.weight" in default.state_dict()
    deep = _model(projector_hidden_layers=3).projector
    linears = [m for m in deep if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 16), (16, 16), (16, 16), (16, 8)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in deep) == 3
    assert deep(torch.randn(4, 32)).shape == (4, 8)


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    model = _model(ImageViews(rq_bins=8))
    images = _images(16)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(15):
        loss = model.two_view_loss(images, torch.Generator().manual_seed(step % 3))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_embed_is_the_unaugmented_encoder_embedding():
    model = _model(ImageViews(rq_bins=2)).eval()
    images = _images()
    batch = {"image": images, "label": torch.zeros(8, dtype=torch.long)}
    first, second = model.embed(batch), model.embed(batch)
    assert first.shape == (8, model.embed_dim) == (8, 32)
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(first, model.encoder(images)[0].mean(1))
    assert model.embed_sequence(batch).shape == (8, 4, 32)


def test_bad_inputs_raise():
    model = _model()
    with pytest.raises(ValueError, match="'image'.*no 'image'"):
        model.training_step({"audio": torch.zeros(2, 100)}, 0)
    with pytest.raises(ValueError, match=r"shape \(3, 16, 16\)"):
        model.training_step({"image": torch.zeros(3, 16, 16)}, 0)
    with pytest.raises(ValueError, match="crop_scale"):
        ImageViews(crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="jitter"):
        ImageViews(jitter=1.5)


def test_trains_in_lightning_and_restores_from_checkpoint(tmp_path, quiet_trainer):
    model = _model(ImageViews(rq_bins=5), optim=OptimizerConfig(lr=1e-3))
    data = torch.utils.data.DataLoader(
        [{"image": image, "label": torch.tensor(0)} for image in _images(16)], batch_size=8
    )
    trainer = quiet_trainer(max_steps=2)
    trainer.fit(model, train_dataloaders=data, val_dataloaders=data)
    assert torch.isfinite(trainer.callback_metrics["val/loss"])
    path = tmp_path / "simclr.ckpt"
    trainer.save_checkpoint(path)
    restored = load_method(path)
    assert type(restored) is SimCLR and restored.views.rq.num_bins == 5
    batch = {"image": _images(4)}
    torch.testing.assert_close(restored.eval().embed(batch), model.eval().embed(batch))
