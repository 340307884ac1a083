import pytest
import torch

from ssl_lightning.audio import collate_audio, crop_or_pad, spaced_crops, split_subclips

RAMP = torch.arange(1.0, 11.0)  # [1, 2, ..., 10]: every sample names its position


@pytest.mark.parametrize(
    ("mode", "expected"), [("start", [1.0, 2.0, 3.0, 4.0]), ("center", [4.0, 5.0, 6.0, 7.0])]
)
def test_crop_longer_clip(mode: str, expected: list[float]) -> None:
    clip, mask = crop_or_pad(RAMP, 4, mode=mode)
    assert clip.tolist() == expected
    assert mask.dtype == torch.bool and not mask.any()


@pytest.mark.parametrize("mode", ["start", "center", "random"])
def test_pad_shorter_clip_at_the_end(mode: str) -> None:
    clip, mask = crop_or_pad(RAMP[:3], 5, mode=mode)
    assert clip.tolist() == [1.0, 2.0, 3.0, 0.0, 0.0]
    assert mask.tolist() == [False, False, False, True, True]


def test_exact_length_is_unchanged() -> None:
    clip, mask = crop_or_pad(RAMP, 10, mode="random")
    assert torch.equal(clip, RAMP) and not mask.any()


def test_random_crop_is_contiguous_reproducible_and_covers_offsets() -> None:
    offsets = set()
    for seed in range(60):
        clip, _ = crop_or_pad(RAMP, 4, mode="random", generator=torch.Generator().manual_seed(seed))
        again, _ = crop_or_pad(RAMP, 4, mode="random", generator=torch.Generator().manual_seed(seed))
        assert torch.equal(clip, again)
        assert torch.equal(clip, torch.arange(clip[0].item(), clip[0].item() + 4))
        offsets.add(int(clip[0].item()) - 1)
    assert offsets == set(range(7))


def test_crop_or_pad_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="mode='end'"):
        crop_or_pad(RAMP, 4, mode="end")
    with pytest.raises(ValueError, match="1-D"):
        crop_or_pad(RAMP[None], 4)
    with pytest.raises(ValueError, match="empty"):
        crop_or_pad(torch.zeros(0), 4)
    with pytest.raises(ValueError, match="num_samples"):
        crop_or_pad(RAMP, 0)


def test_split_contiguous_subclips_pads_the_last() -> None:
    clips, mask = split_subclips(RAMP, 4)
    assert clips.tolist() == [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 10.0, 0.0, 0.0]]
    assert mask.tolist() == [[False] * 4, [False] * 4, [False, False, True, True]]


def test_split_overlapping_subclips() -> None:
    clips, mask = split_subclips(RAMP, 4, hop_samples=3)
    assert clips.tolist() == [[1.0, 2.0, 3.0, 4.0], [4.0, 5.0, 6.0, 7.0], [7.0, 8.0, 9.0, 10.0]]
    assert not mask.any()
    clips, mask = split_subclips(RAMP[:9], 4, hop_samples=2)
    assert clips[:, 0].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert mask[-1].tolist() == [False, False, False, True]


def test_split_exact_multiple_has_no_padding() -> None:
    clips, mask = split_subclips(RAMP[:8], 4)
    assert clips.shape == (2, 4) and not mask.any()


def test_split_short_clip_gives_one_padded_subclip() -> None:
    clips, mask = split_subclips(RAMP[:3], 5)
    assert clips.tolist() == [[1.0, 2.0, 3.0, 0.0, 0.0]]
    assert mask.tolist() == [[False, False, False, True, True]]


def test_split_rejects_hop_that_leaves_gaps() -> None:
    with pytest.raises(ValueError, match="hop_samples"):
        split_subclips(RAMP, 4, hop_samples=5)


def test_collate_pads_audio_and_builds_masks() -> None:
    items = [
        {"audio": torch.tensor([1.0, 2.0, 3.0]), "label": 2, "clip_id": 0, "name": "a"},
        {"audio": torch.tensor([4.0]), "label": 0, "clip_id": 1, "name": "b"},
        {
            "audio": torch.tensor([5.0, 6.0]),
            "padding_mask": torch.tensor([False, True]),
            "label": 1,
            "clip_id": 1,
            "name": "c",
        },
    ]
    batch = collate_audio(items)
    assert batch["audio"].tolist() == [[1.0, 2.0, 3.0], [4.0, 0.0, 0.0], [5.0, 6.0, 0.0]]
    assert batch["padding_mask"].tolist() == [
        [False, False, False],
        [False, True, True],
        [False, True, True],
    ]
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [2, 0, 1]
    assert batch["clip_id"].dtype == torch.int64 and batch["clip_id"].tolist() == [0, 1, 1]
    assert batch["name"] == ["a", "b", "c"]


def test_collate_stacks_multi_hot_labels_and_floats() -> None:
    items = [
        {"audio": torch.zeros(4), "label": torch.tensor([1.0, 0.0, 1.0]), "weight": 0.5},
        {"audio": torch.zeros(4), "label": torch.tensor([0.0, 1.0, 0.0]), "weight": 2},
    ]
    batch = collate_audio(items)
    assert batch["label"].shape == (2, 3) and batch["label"].dtype == torch.float32
    assert batch["weight"].dtype == torch.float32 and batch["weight"].tolist() == [0.5, 2.0]
    assert not batch["padding_mask"].any()


def test_collate_reports_inconsistent_items() -> None:
    with pytest.raises(KeyError, match="item 1"):
        collate_audio([{"audio": torch.zeros(2), "label": 1}, {"audio": torch.zeros(2)}])
    with pytest.raises(ValueError, match="'label'"):
        collate_audio(
            [
                {"audio": torch.zeros(2), "label": torch.zeros(3)},
                {"audio": torch.zeros(2), "label": torch.zeros(4)},
            ]
        )
    with pytest.raises(ValueError, match="item 0: 'padding_mask'"):
        collate_audio([{"audio": torch.zeros(2), "padding_mask": torch.zeros(3, dtype=torch.bool)}])
    with pytest.raises(ValueError, match="empty"):
        collate_audio([])


def test_spaced_crops_start_at_equal_steps_from_start_to_end():
    waveform = torch.arange(10, dtype=torch.float32)
    clips, mask = spaced_crops(waveform, num_samples=4, count=4)
    # starts round(k * (10 - 4) / 3) = 0, 2, 4, 6: the first crop starts the clip, the last ends it
    assert clips[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0] and clips[-1, -1] == 9.0
    assert clips.shape == (4, 4) and not mask.any()


def test_spaced_crops_of_a_short_clip_is_one_padded_crop():
    clips, mask = spaced_crops(torch.ones(3), num_samples=5, count=10)
    assert clips.tolist() == [[1.0, 1.0, 1.0, 0.0, 0.0]] and mask.tolist() == [[False] * 3 + [True] * 2]
