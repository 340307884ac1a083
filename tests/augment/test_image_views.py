"""`ImageViews` and its random colour ops: draws, probabilities, per-sample randomness, modes, errors."""

from pathlib import Path

import pytest
import torch
import torchvision.transforms.v2.functional as TF
import yaml

from ssl_lightning.augment.image_views import (
    ImageViews,
    color_jitter,
    random_gaussian_blur,
    random_grayscale,
    random_resized_crop_flip,
)
from ssl_lightning.augment.randomized_quantization import RandomizedQuantization

REPO = Path(__file__).resolve().parents[2]


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _images(batch: int = 8, size: int = 24, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=gen(seed))


def _is_gray(views: torch.Tensor) -> torch.Tensor:
    """`[B]`: whether all channels of a view are equal."""
    return (views - views[:, :1]).abs().amax(dim=(1, 2, 3)) == 0


def _changed(after: torch.Tensor, before: torch.Tensor) -> torch.Tensor:
    return (after - before).abs().amax(dim=(1, 2, 3)) > 0


def _torchvision_jitter(images, strength, hue, p, generator, order_of_ops=None):
    """Every image jittered by torchvision's ops, with factors and order drawn as `color_jitter` does."""
    batch = images.shape[0]
    ranges = [(1 - strength, 1 + strength)] * 3 + [(-hue, hue)]
    factors = [low + (high - low) * torch.rand(batch, generator=generator) for low, high in ranges]
    jittered = torch.rand(batch, generator=generator) < p
    order = torch.rand(batch, 4, generator=generator).argsort(dim=1) if order_of_ops is None else order_of_ops
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue]
    out = []
    for b, image in enumerate(images):
        for index in order[b].tolist() if jittered[b] else []:
            image = ops[index](image, float(factors[index][b]))
        out.append(image)
    return torch.stack(out), order


def test_color_jitter_is_torchvisions_random_apply_color_jitter_per_sample_in_random_order():
    images = 0.3 + 0.7 * _images(16, 6)  # bright: strong factors clamp, so the order matters
    ours = color_jitter(images, 0.8, gen(7), hue=0.2, p=0.8)
    expected, order = _torchvision_jitter(images, 0.8, 0.2, 0.8, gen(7))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    assert len({tuple(row) for row in order.tolist()}) > 5
    fixed_order, _ = _torchvision_jitter(images, 0.8, 0.2, 0.8, gen(7), torch.arange(4).expand(16, 4))
    assert not torch.allclose(ours, fixed_order, atol=1e-3)


def test_jitter_and_grayscale_probabilities():
    images = torch.rand(4000, 3, 2, 2, generator=gen(2))
    jittered = _changed(color_jitter(images, 0.4, gen(3), p=0.8), images).float().mean()
    assert abs(jittered - 0.8) < 0.03  # binomial sd 0.006
    views = ImageViews(crop_scale=(0.5, 1.0))(images, gen(4))
    assert abs(_is_gray(views).float().mean() - 0.2) < 0.03
    assert not _is_gray(images).any()
    assert abs(_is_gray(random_grayscale(images, 0.2, gen(5))).float().mean() - 0.2) < 0.03


def test_blur_probability_and_blurring_smooths():
    images = torch.rand(2000, 3, 20, 20, generator=gen(6))
    blurred = random_gaussian_blur(images, 0.5, (1.0, 2.0), gen(7))  # sigma >= 1: every blur shows
    chosen = _changed(blurred, images)
    assert abs(chosen.float().mean() - 0.5) < 0.04  # binomial sd 0.011
    assert (blurred[chosen].std(dim=(1, 2, 3)) < images[chosen].std(dim=(1, 2, 3))).all()


def test_views_are_per_sample_random_deterministic_with_a_generator_and_in_range():
    same = _images(1).expand(16, 3, 24, 24)
    views = ImageViews(blur_p=0.5)
    v = views(same, gen(0))
    distance = (v[:, None] - v[None]).abs().amax(dim=(2, 3, 4))
    assert (distance + torch.eye(16) > 1e-4).all()  # every pair of views differs
    torch.testing.assert_close(views(same, gen(0)), v)
    assert not torch.allclose(views(same, gen(1)), v)
    assert v.shape == same.shape and v.min() >= 0 and v.max() <= 1
    gray = views(_images()[:, :1], gen(0))
    assert gray.shape == (8, 1, 24, 24) and gray.min() >= 0 and gray.max() <= 1


def test_eval_mode_keeps_every_view_op_but_rq():
    images = _images()
    full = ImageViews(rq_bins=3, blur_p=0.5)
    plain = ImageViews(blur_p=0.5)
    torch.testing.assert_close(full.eval()(images, gen(3)), plain.train()(images, gen(3)))
    assert not torch.allclose(full.train()(images, gen(3)), plain(images, gen(3)))
    assert _changed(plain.eval()(images, gen(3)), images).all()


def test_ops_with_probability_zero_are_skipped():
    images = _images()
    views = ImageViews(crop_scale=(0.3, 0.9), jitter_p=0.0, grayscale_p=0.0)
    torch.testing.assert_close(views(images, gen(8)), random_resized_crop_flip(images, (0.3, 0.9), gen(8)))


def test_defaults_are_simclr_cifar_and_the_hue_follows_the_strength():
    views = ImageViews()
    assert (views.jitter, views.hue, views.jitter_p, views.grayscale_p, views.blur_p) == (
        0.4,
        0.1,
        0.8,
        0.2,
        0.0,
    )
    assert views.blur_sigma == (0.1, 2.0)
    imagenet = ImageViews(crop_scale=(0.08, 1.0), jitter=0.8, blur_p=0.5)
    assert imagenet.hue == 0.2 and "blur_p=0.5" in repr(imagenet)
    assert ImageViews(jitter=0.8, hue=0.0).hue == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"jitter_p": 1.5}, "jitter_p is a probability"),
        ({"grayscale_p": -0.1}, "grayscale_p is a probability"),
        ({"blur_p": 2.0}, "blur_p is a probability"),
        ({"hue": 0.6}, r"hue must be in \[0, 0.5\]"),
        ({"blur_sigma": (0.0, 1.0)}, "blur_sigma"),
        ({"flip_p": 1.5}, "flip_p is a probability"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ImageViews(**kwargs)


def test_images_with_other_channel_counts_raise():
    with pytest.raises(ValueError, match=r"colour augmentations need .*shape \(8, 4, 24, 24\)"):
        ImageViews()(torch.rand(8, 4, 24, 24))


def test_flip_p_one_mirrors_the_crops_that_flip_p_zero_keeps():
    images = _images()
    kept = ImageViews(flip_p=0.0, jitter_p=0.0, grayscale_p=0.0)(images, gen(9))
    flipped = ImageViews(flip_p=1.0, jitter_p=0.0, grayscale_p=0.0)(images, gen(9))
    torch.testing.assert_close(flipped, kept.flip(-1))
    assert not torch.allclose(flipped, kept)


def test_simclr_rq_recipe_views_are_the_rq_papers_crop_then_rq_and_nothing_else():
    recipe = yaml.safe_load((REPO / "recipes" / "simclr_rq_image.yaml").read_text())
    views = ImageViews(**recipe["model"]["init_args"]["views"]["init_args"]).train()
    assert views.crop_scale == (0.08, 1.0), "RRC scale (crop_min, 1) with MoCo-v3's crop_min 0.08"
    assert views.rq is not None and views.rq.num_bins == 8, "the RQ README's region_num = 8"
    images = _images()
    crop_generator, rq_generator = gen(10), gen(10)
    crops = random_resized_crop_flip(images, (0.08, 1.0), crop_generator, flip_p=0.0)
    rq_generator.set_state(crop_generator.get_state())
    expected = RandomizedQuantization(num_bins=8, p=1.0, channel_dim=1)(crops, rq_generator)
    torch.testing.assert_close(views(images, gen(10)), expected)
