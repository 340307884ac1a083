"""Tests for the hares-mini task registry: the six tasks, their label layouts and clip makers."""

import numpy as np
import pytest

from ssl_lightning.data.embedded.hares_mini import POOL, TASKS, get_task
from ssl_lightning.data.embedded.hares_mini.registry import SPLITS

EXPECTED = {
    "env_events": ("environment", "single", "accuracy", 10),
    "env_scenes": ("environment", "multi", "mAP", 10),
    "speech_keywords": ("speech", "single", "accuracy", 12),
    "speech_language": ("speech", "single", "accuracy", 6),
    "music_pitch": ("music", "single", "accuracy", 24),
    "music_instrument": ("music", "single", "accuracy", 8),
}


def test_six_tasks_with_their_layouts():
    assert list(TASKS) == list(EXPECTED)
    for name, (domain, label_type, metric, num_classes) in EXPECTED.items():
        spec = get_task(name)
        assert (spec.name, spec.domain, spec.label_type, spec.metric) == (name, domain, label_type, metric)
        assert spec.num_classes == num_classes == len(set(spec.classes))
        assert tuple(spec.split_sizes) == SPLITS and all(n >= 60 for n in spec.split_sizes.values())
        assert 0 < spec.eval_seconds <= spec.clip_seconds <= 2.0


def test_speech_keywords_follow_speech_commands_v1():
    assert get_task("speech_keywords").classes == (
        "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_",
    )  # fmt: skip


def test_env_scenes_tag_the_event_classes():
    assert get_task("env_scenes").classes == get_task("env_events").classes


def test_get_task_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="'env_event'.*env_events, env_scenes"):
        get_task("env_event")


@pytest.mark.parametrize("name", ["env_events", "music_pitch", "music_instrument", "speech_keywords"])
def test_single_label_makers_cycle_through_the_classes(name):
    """Clip i has class i mod C, so every split is balanced."""
    spec = get_task(name)
    for index in (0, 1, spec.num_classes + 1):
        waveform, labels = spec.make_clip(np.random.default_rng(0), index, 16000, 8000)
        assert labels == (spec.classes[index % spec.num_classes],)
        assert waveform.shape == (8000,) and waveform.dtype == np.float32


def test_scene_maker_draws_one_to_three_distinct_tags():
    spec = get_task("env_scenes")
    counts = set()
    for seed in range(12):
        _, labels = spec.make_clip(np.random.default_rng(seed), 0, 16000, 8000)
        assert len(set(labels)) == len(labels) and set(labels) <= set(spec.classes)
        assert list(labels) == sorted(labels, key=spec.classes.index)
        counts.add(len(labels))
    assert counts == {1, 2, 3}


def test_pool_is_unlabeled_and_spans_domains():
    assert set(POOL.split_sizes) == {"train", "valid"} and POOL.split_sizes["train"] >= 900
    waveform, labels = POOL.make_clip(np.random.default_rng(0), 0, 16000, 16000)
    assert labels == () and waveform.shape == (16000,)
