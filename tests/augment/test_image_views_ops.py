"""The batched colour and blur ops of `ImageViews` against torchvision's per-image functional ops."""

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from ssl_lightning.augment.color import (
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    grayscale,
    luminance,
)
from ssl_lightning.augment.gaussian_blur import blur_kernel_size, gaussian_blur, gaussian_kernels


def _images() -> torch.Tensor:
    """`[6, 3, 5, 7]` in [0, 1]: random colours, with exact grays, saturated primaries and channel ties."""
    x = torch.rand(6, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    x[0, :, 0, 0] = 0.5  # gray
    x[1, :, 0, 0] = torch.tensor([1.0, 0.0, 0.0])
    x[2, :, 0, 0] = torch.tensor([0.3, 0.8, 0.8])  # G = B is the maximum
    x[3, :, 0, 0] = torch.tensor([0.9, 0.9, 0.2])  # R = G is the maximum
    x[4] = torch.tensor([0.2, 0.4, 0.9])[:, None, None]  # one colour
    return x


FACTORS = torch.tensor([0.0, 0.3, 0.6, 1.0, 1.4, 1.8])
SHIFTS = torch.tensor([-0.5, -0.2, -0.05, 0.0, 0.13, 0.5])


@pytest.mark.parametrize(
    ("ours", "reference", "factors"),
    [
        (adjust_brightness, TF.adjust_brightness, FACTORS),
        (adjust_contrast, TF.adjust_contrast, FACTORS),
        (adjust_saturation, TF.adjust_saturation, FACTORS),
        (adjust_hue, TF.adjust_hue, SHIFTS),
    ],
)
def test_per_sample_factors_match_torchvision_image_by_image(ours, reference, factors):
    images = _images()
    expected = torch.stack([reference(image, float(f)) for image, f in zip(images, factors, strict=True)])
    torch.testing.assert_close(ours(images, factors), expected, atol=1e-5, rtol=0)


def test_grayscale_matches_torchvision_and_keeps_the_channels():
    images = _images()
    torch.testing.assert_close(grayscale(images), TF.rgb_to_grayscale(images, num_output_channels=3))
    torch.testing.assert_close(luminance(images[1:2, :, :1, :1]), torch.tensor([[[[0.2989]]]]))


def test_hue_worked_examples_turn_the_primaries():
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1).repeat(3, 1, 1, 1)
    turned = adjust_hue(red, torch.tensor([1 / 3, -1 / 3, 1 / 6]))
    expected = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]).view(3, 3, 1, 1)
    torch.testing.assert_close(turned, expected, atol=1e-6, rtol=0)
    half_orange = torch.tensor([0.8, 0.5, 0.2]).view(1, 3, 1, 1)  # hue 30 degrees, value 0.8, chroma 0.6
    torch.testing.assert_close(
        adjust_hue(half_orange, torch.tensor([0.5])), torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1)
    )


def test_one_channel_images_follow_torchvision():
    images = _images()[:, :1]
    torch.testing.assert_close(adjust_hue(images, SHIFTS), images)
    torch.testing.assert_close(adjust_saturation(images, FACTORS), images)
    torch.testing.assert_close(grayscale(images), images)
    expected = torch.stack(
        [TF.adjust_contrast(image, float(f)) for image, f in zip(images, FACTORS, strict=True)]
    )
    torch.testing.assert_close(adjust_contrast(images, FACTORS), expected)


def test_blur_kernel_sizes_are_simclrs_ten_percent_made_odd():
    assert [blur_kernel_size(side) for side in (224, 96, 64, 32, 16)] == [23, 9, 7, 3, 1]


def test_gaussian_blur_matches_torchvision_per_sample_sigma():
    images = torch.rand(3, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.1, 0.9, 2.0])
    expected = torch.stack(
        [
            TF.gaussian_blur(image, kernel_size=[7, 5], sigma=[float(s)] * 2)
            for image, s in zip(images, sigma, strict=True)
        ]
    )
    torch.testing.assert_close(gaussian_blur(images, sigma, (5, 7)), expected, atol=1e-5, rtol=0)


def test_gaussian_kernels_worked_example_and_constant_images_stay_constant():
    kernel = gaussian_kernels(torch.tensor([1.0]), 3)
    weights = torch.tensor([torch.exp(torch.tensor(-0.5)), 1.0, torch.exp(torch.tensor(-0.5))])
    torch.testing.assert_close(kernel, (weights / weights.sum()).view(1, 3))
    constant = torch.rand(2, 3, 1, 1).expand(2, 3, 9, 9)
    torch.testing.assert_close(gaussian_blur(constant, torch.tensor([0.5, 2.0]), (5, 5)), constant)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"colour augmentations .*shape \(2, 4, 5, 5\)"):
        adjust_hue(torch.rand(2, 4, 5, 5), torch.zeros(2))
    with pytest.raises(ValueError, match=r"one factor per image, shape \(2,\); got \(3,\)"):
        adjust_brightness(torch.rand(2, 3, 5, 5), torch.ones(3))
    with pytest.raises(ValueError, match="too large for 5x5"):
        gaussian_blur(torch.rand(2, 3, 5, 5), torch.ones(2), (11, 3))
    with pytest.raises(ValueError, match="odd"):
        gaussian_kernels(torch.ones(2), 4)
