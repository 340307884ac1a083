"""DabsSpeechDataModule / DabsLibriSpeechDataModule: the library's audio datamodules through DABS's speech
front-end, on hares-mini speech_keywords and the tiny Fluent, LibriSpeech, AudioMNIST (48 kHz) and
LibriSpeech speaker layouts."""

import csv
import runpy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch

from ssl_lightning.audio import load_audio
from ssl_lightning.audio.dabs_logmel import DABS_NUM_SAMPLES, DABS_STATS, DabsLogMel
from ssl_lightning.data.audio.audio_mnist import AudioMNISTDataModule
from ssl_lightning.data.audio.fluent import FluentSpeechCommandsDataModule
from ssl_lightning.data.audio.librispeech import LibriSpeechDataModule
from ssl_lightning.data.audio.librispeech_speaker import LibriSpeechSpeakerDataModule
from ssl_lightning.data.dabs.speech import (
    SPECTROGRAM_SPEC,
    DabsLibriSpeechDataModule,
    DabsSpectrograms,
    DabsSpeechDataModule,
)
from ssl_lightning.data.embedded.hares_mini import HaresMiniDataModule
from ssl_lightning.nn.input_specs import InputSpec

LAYOUTS = Path(__file__).parents[2] / "layouts"
fluent_layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "FluentSpeechCommandsDataModule.py")))
libri_layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "LibriSpeechDataModule.py")))
mnist_layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "AudioMNISTDataModule.py")))
speaker_layout = SimpleNamespace(**runpy.run_path(str(LAYOUTS / "LibriSpeechSpeakerDataModule.py")))
SIZES = {"train": 6, "valid": 3, "test": 3}


@pytest.fixture(scope="module")
def keywords(tmp_path_factory) -> DabsSpeechDataModule:
    source = HaresMiniDataModule(
        "speech_keywords", root=str(tmp_path_factory.mktemp("hm")), split_sizes=SIZES
    )
    data = DabsSpeechDataModule(source, batch_size=4, stats_clips=5)
    data.prepare_data()
    data.setup()
    return data


@pytest.fixture(scope="module")
def fluent_root(tmp_path_factory) -> Path:
    return Path(fluent_layout.make(tmp_path_factory.mktemp("fluent"))["root"])


def test_spec_and_default_source():
    assert SPECTROGRAM_SPEC == InputSpec("spectrogram", "2d", (224, 224), 16, 1)
    assert SPECTROGRAM_SPEC.num_tokens == 196
    data = DabsSpeechDataModule()
    assert isinstance(data.source, HaresMiniDataModule) and data.source.spec.name == "speech_keywords"
    assert data.input_specs == [SPECTROGRAM_SPEC] and data.batch_size == 64


def test_batches_are_the_front_end_of_padded_clips(keywords):
    source = keywords.source
    assert keywords.classes == source.classes and keywords.label_type == "single"
    assert keywords.num_classes == 12 and not keywords.canonical
    assert "train + valid" in keywords.split_note
    assert len(keywords.dataset("train", "random_crop")) == SIZES["train"] + SIZES["valid"]
    batch = next(iter(keywords.subclip_dataloader("test", batch_size=3)))
    assert batch["spectrogram"].shape == (3, 1, 224, 224) and batch["spectrogram"].dtype == torch.float32
    assert batch["clip_id"].tolist() == [0, 1, 2]
    clips = source.read_splits()["test"]
    assert batch["label"].tolist() == [source.classes.index(labels[0]) for _, labels in clips]
    wave = load_audio(clips[1][0], 16000)
    assert wave.numel() < DABS_NUM_SAMPLES  # 1 s clips: zero-padded after their end
    padded = torch.nn.functional.pad(wave, (0, DABS_NUM_SAMPLES - wave.numel()))
    expected = DabsLogMel(keywords.mean, keywords.std)(padded[None])[0]
    torch.testing.assert_close(batch["spectrogram"][1], expected)
    train = next(iter(keywords.train_dataloader()))
    assert set(train) == {"spectrogram", "label", "clip_id"} and train["spectrogram"].shape[1:] == (
        1,
        224,
        224,
    )


def test_statistics_from_the_first_train_clips(keywords):
    paths = [path for split in ("train", "valid") for path, _ in keywords.source.read_splits()[split]][:5]
    values = []
    for path in paths:
        wave = load_audio(path, 16000)
        values.append(DabsLogMel()(torch.nn.functional.pad(wave, (0, DABS_NUM_SAMPLES - wave.numel()))[None]))
    values = torch.cat(values).double()
    assert keywords.mean == pytest.approx(values.mean().item(), rel=1e-6)
    assert keywords.std == pytest.approx(values.std(unbiased=False).item(), rel=1e-5)
    given = DabsSpeechDataModule(keywords.source, mean=-31.809, std=13.127)
    given.setup()
    assert (given.mean, given.std) == DABS_STATS["fluent"]


class Clips(torch.utils.data.Dataset):
    """One long clip: 1 kHz for DABS's length, then silence for as long again."""

    def __len__(self):
        return 1

    def __getitem__(self, index):
        t = torch.arange(2 * DABS_NUM_SAMPLES) / 16000
        return {"audio": torch.sin(2 * torch.pi * 1000 * t) * (t < DABS_NUM_SAMPLES / 16000)}


def test_long_clips_keep_their_start_or_their_end():
    front_end = DabsLogMel()
    start = DabsSpectrograms(Clips(), front_end, random_side=False)[0]["spectrogram"]
    assert start.max() - start.min() > 50  # the tone
    torch.manual_seed(0)
    views = [DabsSpectrograms(Clips(), front_end, random_side=True)[0]["spectrogram"] for _ in range(12)]
    ends = [bool((view == view.flatten()[0]).all()) for view in views]  # silence: all at the floor
    assert any(ends) and not all(ends)
    for view, end in zip(views, ends, strict=True):
        if not end:
            torch.testing.assert_close(view, start)


def test_fluent_slots_as_three_tasks(fluent_root):
    source = FluentSpeechCommandsDataModule(root=str(fluent_root))
    action = DabsSpeechDataModule(source, slot="action", mean=0.0, std=1.0, batch_size=8)
    action.setup()
    assert action.classes == tuple(sorted(fluent_layout.ACTIONS)) and action.label_type == "single"
    assert action.num_classes == 6 and action.canonical
    with open(fluent_root / "data" / "test_data.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = next(iter(action.subclip_dataloader("test")))["label"]
    assert labels.tolist() == [action.classes.index(row["action"]) for row in rows]
    location = DabsSpeechDataModule(source, slot="location", mean=0.0, std=1.0)
    location.setup()
    assert location.classes == tuple(sorted(fluent_layout.LOCATIONS))
    every = DabsSpeechDataModule(source, mean=0.0, std=1.0)
    every.setup()
    assert every.label_type == "multi" and every.num_classes == 24
    assert every.dataset("test", "subclips")[0]["label"].sum() == 3


def test_librispeech_pre_training(tmp_path):
    data = DabsLibriSpeechDataModule(str(libri_layout.make(tmp_path)["root"]), batch_size=5)
    data.setup()
    assert (data.mean, data.std) == DABS_STATS["librispeech"] and data.canonical
    assert len(data.dataset("train", "random_crop")) == 18 and len(data.dataset("valid", "subclips")) == 6
    batch = next(iter(data.train_dataloader()))
    assert set(batch) == {"spectrogram", "clip_id"} and batch["spectrogram"].shape == (5, 1, 224, 224)
    with pytest.raises(ValueError, match="no split 'test'"):
        data.dataset("test", "subclips")


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory) -> Path:
    """AudioMNIST with speakers 28, 1, 3 (train), 12, 4 (valid), 26, 5 (test); 30 clips each."""
    return Path(mnist_layout.make(tmp_path_factory.mktemp("audio_mnist"))["root"])


def test_audio_mnist_at_48_khz(mnist_root):
    mean, std = DABS_STATS["audio_mnist"]
    data = DabsSpeechDataModule(AudioMNISTDataModule(str(mnist_root)), mean=mean, std=std, sample_rate=48000)
    data.setup()
    assert data.classes == tuple("0123456789") and data.label_type == "single" and data.batch_size == 64
    assert not data.canonical  # 7 of the 60 speakers
    assert len(data.dataset("train", "random_crop")) == 150 and len(data.dataset("test", "subclips")) == 60
    batch = next(iter(data.subclip_dataloader("test", batch_size=8)))
    assert batch["spectrogram"].shape == (8, 1, 224, 224)
    assert batch["label"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2]  # 0_26_0, 0_26_10, 0_26_2, 1_26_0, ...
    wave, rate = soundfile.read(str(mnist_root / "data" / "26" / "0_26_0.wav"), dtype="float32")
    padded = torch.nn.functional.pad(torch.from_numpy(wave), (0, DABS_NUM_SAMPLES - wave.size))
    expected = DabsLogMel(mean, std, sample_rate=48000)(padded[None])[0]
    torch.testing.assert_close(batch["spectrogram"][0], expected)
    assert rate == 48000 and data.front_end.mel_spectrogram.sample_rate == 48000


def test_statistics_at_48_khz(mnist_root):
    data = DabsSpeechDataModule(AudioMNISTDataModule(str(mnist_root)), stats_clips=2, sample_rate=48000)
    data.setup()
    waves = [
        soundfile.read(str(mnist_root / "data" / "28" / name), dtype="float32")[0]
        for name in ("0_28_0.wav", "0_28_10.wav")
    ]
    padded = torch.stack(
        [torch.nn.functional.pad(torch.from_numpy(w), (0, DABS_NUM_SAMPLES - w.size)) for w in waves]
    )
    values = {rate: DabsLogMel(sample_rate=rate)(padded).double() for rate in (48000, 16000)}
    assert data.mean == pytest.approx(values[48000].mean().item(), rel=1e-6)
    assert data.std == pytest.approx(values[48000].std(unbiased=False).item(), rel=1e-5)
    assert data.mean != pytest.approx(values[16000].mean().item(), rel=1e-3)


def test_48_khz_mel_filterbank_reaches_24_khz(tmp_path):
    root = mnist_layout.write_audio_mnist(tmp_path / "AudioMNIST-master")
    t = np.arange(14400) / 48000  # 0.3 s: frames 0..~20 of the 672-sample hop
    soundfile.write(str(root / "data" / "26" / "0_26_0.wav"), 0.5 * np.sin(2 * np.pi * 20000 * t), 48000)
    data = DabsSpeechDataModule(AudioMNISTDataModule(str(root)), mean=0.0, std=1.0, sample_rate=48000)
    data.setup()
    image = data.dataset("test", "subclips")[0]["spectrogram"][0]  # [224 mels, 224 frames]
    # Slaney mel scale: 15 + 27 ln(f / 1000) / ln(6.4) above 1 kHz: 58.57 at 20 kHz, 61.22 at sr / 2 = 24 kHz;
    # 224 bins centred at (k + 1) * 61.22 / 225: the nearest centre to 58.57 is k = 214 (at 16 kHz every
    # bin lies below 8 kHz).
    assert image[:, 5:15].argmax(dim=0).tolist() == [214] * 10


def test_librispeech_speaker_task_trains_on_train_alone(tmp_path, monkeypatch):
    source = LibriSpeechSpeakerDataModule(speaker_layout.make(tmp_path)["root"])
    with pytest.raises(ValueError, match="valid split serves its test clips.*pass train_on_valid=False"):
        DabsSpeechDataModule(source)
    data = DabsSpeechDataModule(source, train_on_valid=False, mean=-22.924, std=12.587, batch_size=4)
    data.setup()
    assert data.classes == ("84", "174", "1272") and data.num_classes == 3 and not data.canonical
    assert len(data.dataset("train", "random_crop")) == 12 and len(data.dataset("test", "subclips")) == 4
    batch = next(iter(data.test_dataloader()))  # 84-121550-0000, 174-50561-0003, 1272-... twice
    assert batch["spectrogram"].shape == (4, 1, 224, 224) and batch["label"].tolist() == [0, 1, 2, 2]
    assert "train = its train;" in data.split_note and "valid serves the test clips" in data.split_note
    monkeypatch.setattr(LibriSpeechSpeakerDataModule, "canonical", True)
    assert data.canonical  # DABS's split: train alone, as the source has no valid split of its own


def test_errors(keywords, fluent_root, mnist_root, tmp_path):
    with pytest.raises(
        ValueError, match=r"construct AudioMNISTDataModule with sample_rate=16000 \(got 48000\)"
    ):
        DabsSpeechDataModule(AudioMNISTDataModule(str(mnist_root)))
    with pytest.raises(ValueError, match="sample_rate=16000"):
        DabsSpeechDataModule(HaresMiniDataModule("speech_keywords", sample_rate=8000))
    with pytest.raises(ValueError, match="both mean and std"):
        DabsSpeechDataModule(keywords.source, mean=1.0)
    with pytest.raises(ValueError, match="slot='action' needs a multi-label source"):
        DabsSpeechDataModule(keywords.source, slot="action").setup()
    source = FluentSpeechCommandsDataModule(root=str(fluent_root))
    with pytest.raises(ValueError, match="'colour=<value>'"):
        DabsSpeechDataModule(source, slot="colour", mean=0.0, std=1.0).setup()
    cropping = LibriSpeechDataModule(str(libri_layout.make(tmp_path)["root"]), min_sample_size=None)
    with pytest.raises(ValueError, match="max_sample_size=None"):
        DabsSpeechDataModule(cropping)
