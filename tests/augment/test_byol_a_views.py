import math

import pytest
import torch
import torch.nn.functional as F

from ssl_lightning.augment import ByolAViews, MemoryMixup, RandomResizeCrop
from ssl_lightning.augment.byol_a_views import standardize_batch
from ssl_lightning.augment.random_resize_crop import resize_matrix
from ssl_lightning.augment.segments import random_segment

IDENTITY_CROP = {"virtual_crop_scale": (1.0, 1.0), "freq_scale": (1.0, 1.0), "time_scale": (1.0, 1.0)}


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def constant_batch(values: list[float], frames: int = 6, mels: int = 4) -> torch.Tensor:
    """`[len(values), frames, mels]`, sample i filled with values[i]."""
    return torch.tensor(values)[:, None, None].expand(-1, frames, mels).clone()


# ---- RandomResizeCrop ------------------------------------------------------------------------


def test_resize_matrices_reproduce_the_official_canvas_crop_and_bicubic_resize() -> None:
    spec = torch.randn(5, 96, 64, generator=gen(0))
    # (start, length) per sample on canvases of 144 frames (input at 24..119) and 64 mels: whole
    # canvas, crops reaching into the zero canvas, a 1-frame crop, and crops wider than the input.
    time_start, time_length = torch.tensor([0, 10, 48, 3, 20]), torch.tensor([144, 57, 96, 1, 124])
    freq_start, freq_length = torch.tensor([0, 5, 0, 30, 2]), torch.tensor([64, 38, 64, 1, 60])
    out = (
        resize_matrix(96, time_start, time_length, 24)
        @ spec
        @ resize_matrix(64, freq_start, freq_length, 0).mT
    )
    for b in range(5):
        canvas = torch.zeros(144, 64)
        canvas[24:120] = spec[b]
        crop = canvas[
            time_start[b] : time_start[b] + time_length[b], freq_start[b] : freq_start[b] + freq_length[b]
        ]
        expected = F.interpolate(crop[None, None], size=(96, 64), mode="bicubic", align_corners=True)[0, 0]
        torch.testing.assert_close(out[b], expected, atol=1e-5, rtol=0)


def test_identity_scales_return_the_input_and_eval_mode_crops_too() -> None:
    spec = torch.randn(3, 96, 64, generator=gen(1))
    torch.testing.assert_close(RandomResizeCrop(**IDENTITY_CROP)(spec, gen(2)), spec, atol=1e-5, rtol=0)
    assert torch.equal(RandomResizeCrop().eval()(spec, gen(2)), RandomResizeCrop()(spec, gen(2)))


def test_crop_lengths_and_starts_stay_in_the_official_ranges() -> None:
    # A time ramp (value = frame index) cropped to w frames from start j and resized to 96 frames
    # becomes j + o * (w - 1) / 95: exactly at both ends (taps at t = 0), within 0.05 inside (Keys'
    # kernel with A = -0.75 reproduces a ramp only approximately).
    batch, frames = 2000, 96
    ramp = torch.arange(frames, dtype=torch.float32)[None, :, None].expand(batch, frames, 1)
    crop = RandomResizeCrop(virtual_crop_scale=(1.0, 1.0), freq_scale=(1.0, 1.0), time_scale=(0.6, 1.5))
    out = crop(ramp, gen(3))[:, :, 0]
    width = (out[:, 95] - out[:, 0] + 1).round()  # end points are exact: taps at t = 0
    start = out[:, 0].round()
    # w = clip(int(U(0.6, 1.5) * 96), 1, 96): 57..96, and 96 (the clip) for every U >= 1 (5/9 of draws).
    assert width.min() == 57 and width.max() == 96
    assert abs((width == 96).float().mean().item() - 5 / 9) < 0.04
    assert torch.all(start >= 0) and torch.all(start + width <= frames)
    assert torch.allclose(
        out[width < 80, 40], start[width < 80] + 40 * (width[width < 80] - 1) / 95, atol=0.05
    )
    # starts are uniform over the valid positions 0..96 - w, both ends included.
    room = frames - width[width < frames]
    position = start[width < frames] / room
    assert position.min() == 0 and position.max() == 1
    assert abs(position.mean().item() - 0.5) < 0.04


def test_crops_are_drawn_per_sample_and_reproducible_with_a_generator() -> None:
    spec = torch.randn(1, 96, 64, generator=gen(4)).expand(8, -1, -1)
    out = RandomResizeCrop()(spec, gen(5))
    assert len({round(v, 4) for v in out.sum(dim=(1, 2)).tolist()}) == 8
    assert torch.equal(out, RandomResizeCrop()(spec, gen(5)))
    assert not torch.equal(out, RandomResizeCrop()(spec, gen(6)))


def test_bad_scales_and_shapes_raise() -> None:
    with pytest.raises(ValueError, match="virtual_crop_scale"):
        RandomResizeCrop(virtual_crop_scale=(0.5, 1.5))
    with pytest.raises(ValueError, match="time_scale"):
        RandomResizeCrop(time_scale=(1.5, 0.6))
    with pytest.raises(ValueError, match=r"\[B, frames, mels\]"):
        RandomResizeCrop()(torch.zeros(96, 64))


# ---- MemoryMixup -----------------------------------------------------------------------------


def test_first_batch_is_unchanged_and_then_mixes_in_the_linear_domain() -> None:
    mixup = MemoryMixup(ratio=0.4, memory_size=64)
    background = constant_batch([math.log(3.0)] * 4)
    assert torch.equal(mixup(background, gen(0)), background)  # empty memory
    x = torch.zeros(32, 6, 4)  # exp(x) = 1
    out = mixup(x, gen(1))
    # log((1 - a) * 1 + a * 3 + eps) = log(1 + 2a): a is one draw per sample, in [0, 0.4).
    alpha = (out.exp() - 1 - torch.finfo(torch.float32).eps) / 2
    per_sample = alpha[:, :1, :1]
    torch.testing.assert_close(alpha, per_sample.expand_as(alpha), atol=1e-6, rtol=0)
    assert per_sample.min() >= 0 and per_sample.max() < 0.4
    assert len({round(v, 5) for v in per_sample.flatten().tolist()}) == 32


def test_backgrounds_are_uniform_picks_from_the_memory() -> None:
    mixup = MemoryMixup(ratio=1.0, memory_size=64)
    mixup(constant_batch([math.log(2.0)] * 16, frames=1, mels=1), gen(0))
    mixup(constant_batch([math.log(5.0)] * 16, frames=1, mels=1), gen(1))  # memory: 16 x e^log 2, 16 x 5
    out = mixup(torch.zeros(4000, 1, 1), gen(2)).exp().flatten() - 1  # = a * (background - 1)
    from_five = out > 1.0  # a * 4 > 1 cannot come from background 2 (a * 1 <= 1)
    # P(out > 1 | background 5) = P(a > 1/4) = 3/4 with a ~ U(0, 1), half of the memory is 5
    assert abs(from_five.float().mean().item() - 0.5 * 0.75) < 0.03


def test_memory_is_a_fifo_of_the_last_examples_kept_out_of_parameters_and_buffers() -> None:
    mixup = MemoryMixup(ratio=0.4, memory_size=3)
    for value in (1.0, 2.0, 3.0):
        mixup(constant_batch([value, value + 0.5]), gen(int(value)))
    assert sorted(mixup.memory[:, 0, 0].tolist()) == [2.5, 3.0, 3.5]
    assert mixup.stored == 3
    assert list(mixup.parameters()) == [] and list(mixup.buffers()) == []


def test_memory_is_saved_in_the_state_dict_and_a_restored_copy_mixes_identically() -> None:
    mixup = MemoryMixup(ratio=0.4, memory_size=5)
    for value in (1.0, 2.0, 3.0):  # 6 examples into 5 slots: the FIFO has wrapped, position 1
        mixup(constant_batch([value, value + 0.5]), gen(int(value)))
    state = mixup.state_dict()
    assert list(state) == ["_extra_state"]
    saved = state["_extra_state"]
    assert saved["stored"] == 5 and saved["position"] == 1
    assert saved["memory"][:, 0, 0].tolist() == [3.5, 1.5, 2.0, 2.5, 3.0]  # slot order: slot 0 overwritten
    restored = MemoryMixup(ratio=0.4, memory_size=5)
    restored.load_state_dict(state)
    x = torch.randn(4, 6, 4)
    assert torch.equal(restored(x, gen(7)), mixup(x, gen(7)))
    assert torch.equal(restored.memory, mixup.memory) and restored.position == mixup.position == 0


def test_a_partly_filled_memory_restores_and_an_old_state_dict_loads_empty() -> None:
    mixup = MemoryMixup(ratio=0.4, memory_size=8)
    mixup(constant_batch([1.0, 2.0, 3.0]), gen(0))
    restored = MemoryMixup(ratio=0.4, memory_size=8)
    restored.load_state_dict(mixup.state_dict())
    assert restored.stored == 3 and restored.position == 3
    assert restored.memory.shape == (8, *mixup.memory.shape[1:])
    assert restored.memory[:3, 0, 0].tolist() == [1.0, 2.0, 3.0]
    restored.load_state_dict({})  # a checkpoint written before the memory was saved: strict, no error
    assert restored.memory is None and restored.stored == 0
    with pytest.raises(ValueError, match="remembers 3 examples but memory_size is 2"):
        MemoryMixup(memory_size=2).load_state_dict(mixup.state_dict())


def test_eval_mode_neither_mixes_nor_remembers() -> None:
    mixup = MemoryMixup().eval()
    x = torch.randn(4, 6, 4)
    assert mixup(x) is x and mixup.stored == 0


def test_memory_refuses_a_new_example_shape() -> None:
    mixup = MemoryMixup()
    mixup(torch.zeros(2, 6, 4))
    with pytest.raises(ValueError, match="segment_frames"):
        mixup(torch.zeros(2, 7, 4))


# ---- ByolAViews ------------------------------------------------------------------------------


def test_segments_are_random_contiguous_windows_over_the_whole_input() -> None:
    ramp = torch.arange(200.0)[None, :, None].expand(500, 200, 2)
    windows = random_segment(ramp, 96, gen(0))[:, :, 0]
    assert windows.shape == (500, 96)
    assert torch.all(windows.diff(dim=1) == 1)
    starts = windows[:, 0]
    assert starts.min() == 0 and starts.max() == 104
    assert abs(starts.mean().item() - 52) < 3
    assert random_segment(ramp, 300) is ramp


def test_views_have_the_segment_shape_and_are_standardised_per_view() -> None:
    long, short = torch.randn(16, 250, 64, generator=gen(1)), torch.randn(16, 40, 64, generator=gen(2))
    view = ByolAViews()(long, gen(3))
    assert view.shape == (16, 96, 64)
    assert abs(view.mean().item()) < 1e-5 and abs(view.std().item() - 1) < 1e-5
    assert ByolAViews()(short, gen(4)).shape == (16, 40, 64)
    assert ByolAViews.domain == "spectrogram"


def test_pipeline_is_segment_mixup_crop_then_post_norm() -> None:
    # With identity crops and a mixup ratio of 0 a view is the standardised segment itself.
    spec = torch.randn(8, 96, 64, generator=gen(5))
    views = ByolAViews(mixup_ratio=0.0, **IDENTITY_CROP)
    views(spec, gen(6))  # fills the memory
    torch.testing.assert_close(views(spec, gen(7)), standardize_batch(spec), atol=1e-4, rtol=0)
    assert views.mixup.stored == 16  # each view stores its batch, as the official code (twice per item)


def test_views_differ_per_sample_and_per_call_and_replay_with_a_generator() -> None:
    spec = torch.randn(1, 150, 64, generator=gen(8)).expand(6, -1, -1)
    first, second = ByolAViews(), ByolAViews()
    a = [first(spec, gen(9)), first(spec, gen(10))]
    b = [second(spec, gen(9)), second(spec, gen(10))]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], a[1])
    assert len({round(v, 3) for v in a[1].abs().sum(dim=(1, 2)).tolist()}) == 6


def test_rq_replaces_mixup_with_five_levels_per_mel_bin() -> None:
    spec = torch.randn(4, 96, 64, generator=gen(11))
    views = ByolAViews(rq_bins=5, **IDENTITY_CROP)
    assert views.mixup is None and views.rq.num_bins == 5
    view = views(spec, gen(12))
    levels = torch.tensor(
        [[len(view[b, :, f].round(decimals=4).unique()) for f in range(64)] for b in range(4)]
    )
    assert levels.max() <= 5 and levels.float().mean() > 4
    plain = ByolAViews(**IDENTITY_CROP)(spec, gen(12))
    assert len(plain[0, :, 0].unique()) == 96


def test_eval_views_crop_but_neither_mix_nor_touch_the_memory() -> None:
    spec = torch.randn(4, 96, 64, generator=gen(13))
    views = ByolAViews(mixup_ratio=1.0, **IDENTITY_CROP)
    views(spec, gen(14))  # training call: the memory holds 4 examples
    views.eval()
    torch.testing.assert_close(views(spec, gen(15)), standardize_batch(spec), atol=1e-4, rtol=0)
    assert views.mixup.stored == 4
    cropping = ByolAViews().eval()
    assert torch.equal(cropping(spec, gen(16)), cropping(spec, gen(16)))
    assert not torch.equal(cropping(spec, gen(16)), cropping(spec, gen(17)))


def test_views_reject_waveforms() -> None:
    with pytest.raises(ValueError, match="encoder.spectrogram"):
        ByolAViews()(torch.randn(4, 16000))
