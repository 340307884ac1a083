"""The HEAR 2021 API (`ssl_lightning.hear`): hear-validator's checks (names, attributes, shapes, dtypes,
timestamp spacing and range) for an official BEATs file, method checkpoints of BYOL-A, Slowfast NFNet and
data2vec-on-spectrogram encoders and a Hugging Face data2vec directory; batch independence, short and long
audio, windows and frame centres against worked examples; encoders without time are refused."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from einops import reduce
from torch.utils.data import DataLoader

import ssl_lightning.hear as hear
from ssl_lightning.backbones import (
    ByolAEncoder,
    Data2VecAudioEncoder,
    Data2VecSpectrogramConfig,
    Data2VecSpectrogramEncoder,
    Data2VecTextConfig,
    Data2VecTextEncoder,
    SlowfastNFNet,
)
from ssl_lightning.methods import FrozenEncoder, SupervisedClassifier

FIXTURES = Path(__file__).parents[1] / "fixtures"
ACCEPTABLE_SAMPLE_RATES = (16000, 22050, 32000, 44100, 48000)
"""hear-validator's `ValidateModel.ACCEPTABLE_SAMPLE_RATE`."""


def white_noise(num_audio: int, seconds: float, seed: int = 0) -> torch.Tensor:
    """The validator's input: uniform noise in [-1, 1], `int(seconds * 16000)` samples."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(num_audio, int(seconds * 16000), generator=generator) * 2 - 1


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny models run faster on one thread than on two shared cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def beats_file(tmp_path_factory) -> Path:
    """An official BEATs checkpoint file (`{"cfg", "model"}`), the fixture's random pre-trained model."""
    path = tmp_path_factory.mktemp("beats") / "BEATs_tiny.pt"
    torch.save(torch.load(FIXTURES / "beats" / "encoder.pt", weights_only=True)["checkpoint"], path)
    return path


@pytest.fixture(scope="module")
def data2vec_directory(tmp_path_factory) -> Path:
    """A transformers data2vec-audio directory of the fixture's weights (3 convs, strides 5, 4, 4)."""
    fx = torch.load(FIXTURES / "data2vec" / "data2vec_audio_hf_small.pt", weights_only=True)
    encoder = Data2VecAudioEncoder(Data2VecAudioEncoder.config_from_huggingface(fx["config"]))
    encoder.load_state_dict(fx["state_dict"])
    return encoder.to_huggingface(tmp_path_factory.mktemp("data2vec") / "data2vec-audio-tiny")


def trained_checkpoint(root: Path, encoder: torch.nn.Module) -> Path:
    """A checkpoint of a supervised method on `encoder` after one training step."""
    method = SupervisedClassifier(encoder, num_classes=2, label_type="single")
    data = DataLoader(
        [{"audio": white_noise(1, 0.5, seed)[0], "label": torch.tensor(seed % 2)} for seed in range(4)],
        batch_size=2,
    )
    trainer = L.Trainer(
        max_steps=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, default_root_dir=root,
    )  # fmt: skip
    trainer.fit(method, train_dataloaders=data)
    trainer.save_checkpoint(root / "supervised.ckpt")
    return root / "supervised.ckpt"


@pytest.fixture(scope="module")
def method_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint of a supervised BYOL-A-encoder method after one training step."""
    return trained_checkpoint(tmp_path_factory.mktemp("method"), ByolAEncoder(d=32, channels=4))


@pytest.fixture(scope="module")
def slowfast_checkpoint(tmp_path_factory) -> Path:
    """The same with a toy Slowfast NFNet (1/8 width, one block a stage)."""
    encoder = SlowfastNFNet(width_multiplier=0.125, depths=[1, 1, 1, 1])
    return trained_checkpoint(tmp_path_factory.mktemp("slowfast"), encoder)


@pytest.fixture(scope="module")
def spectrogram_checkpoint(tmp_path_factory) -> Path:
    """The same with a toy data2vec-on-spectrogram ViT whose image holds 64 fbank frames (4 frames of 16)."""
    config = Data2VecSpectrogramConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_frames=64
    )
    return trained_checkpoint(tmp_path_factory.mktemp("spectrogram"), Data2VecSpectrogramEncoder(config))


MODEL_FILES = {
    "beats": "beats_file",
    "method": "method_checkpoint",
    "slowfast": "slowfast_checkpoint",
    "spectrogram": "spectrogram_checkpoint",
    "data2vec": "data2vec_directory",
}


@pytest.fixture(params=list(MODEL_FILES))
def model(request) -> hear.HearModel:
    return hear.load_model(str(request.getfixturevalue(MODEL_FILES[request.param])))


def test_the_module_has_the_api():
    for name in ("load_model", "get_scene_embeddings", "get_timestamp_embeddings"):
        assert callable(getattr(hear, name))


@pytest.mark.parametrize("seconds", [1.07, 1.98, 4.0])
def test_timestamp_embeddings_pass_the_validator_checks(model, seconds):
    """hear-validator's `_check_timestamp_embeddings`: its errors, and its warnings on where timestamps start
    and end (the hop > 50 ms suggestion aside: BEATs' frame is 160 ms)."""
    assert model.sample_rate in ACCEPTABLE_SAMPLE_RATES
    assert isinstance(model.scene_embedding_size, int) and isinstance(model.timestamp_embedding_size, int)
    embeddings, timestamps = hear.get_timestamp_embeddings(white_noise(2, seconds), model)
    assert embeddings.dtype == torch.float32 and embeddings.ndim == 3 and timestamps.ndim == 2
    assert embeddings.shape[0] == 2 and embeddings.shape[:2] == timestamps.shape
    assert embeddings.shape[2] == model.timestamp_embedding_size and torch.isfinite(embeddings).all()
    diff = np.diff(timestamps.numpy())
    assert np.max(np.abs(diff - diff.mean())) <= 1
    assert timestamps.min() <= diff.mean() and timestamps.max() <= 1000 * seconds
    assert timestamps.max() >= 1000 * seconds - diff.mean()


def test_scene_embeddings_pass_the_validator_checks_and_are_the_mean_of_the_frames(model):
    audio = white_noise(4, 2.74)
    embeddings = hear.get_scene_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and embeddings.shape == (4, model.scene_embedding_size)
    torch.testing.assert_close(embeddings, hear.get_timestamp_embeddings(audio, model)[0].mean(1))


def test_an_embedding_does_not_depend_on_the_batch(model):
    audio = white_noise(3, 1.3, seed=5)
    together, _ = hear.get_timestamp_embeddings(audio, model)
    alone, _ = hear.get_timestamp_embeddings(audio[1:2], model)
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-5)
    reversed_scene = hear.get_scene_embeddings(audio.flip(0), model)
    torch.testing.assert_close(
        reversed_scene.flip(0), hear.get_scene_embeddings(audio, model), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("samples", [1, 29])
def test_audio_shorter_than_half_a_frame_gives_one_frame(model, samples):
    """Under half the shortest span (data2vec's 60 samples) every encoder has one frame, on zero padding."""
    embeddings, timestamps = hear.get_timestamp_embeddings(white_noise(2, samples / 16000), model)
    assert embeddings.shape == (2, 1, model.timestamp_embedding_size) and torch.isfinite(embeddings).all()
    assert timestamps.shape == (2, 1)


def test_beats_frame_centres_and_windows_against_a_worked_example(beats_file):
    """BEATs frames: 16 fbank frames (hop 160, 400-sample windows) = 2560-sample hop, 2800-sample span, centre
    1400 + 2560 i samples = 87.5 + 160 i ms. 1.07 s (17120 samples): centres <= 1070 ms for i <= 6, 7 frames.
    With 0.5 s windows (8000 samples: (8000 - 2800) // 2560 + 1 = 3 frames, 2 * 2560 + 2800 = 7920 samples),
    frames 0-2, 3-5 and 6 come from three passes over samples [0, 7920), [7680, 15600), [15360, 23280)
    (zero-padded past 17120), each frame the mean of its 8 frequency patches."""
    audio = white_noise(2, 1.07, seed=3)
    model = hear.load_model(str(beats_file))
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert timestamps[0].tolist() == [87.5 + 160 * i for i in range(7)] and embeddings.shape[1] == 7
    windowed = hear.HearModel(model.method, window_seconds=0.5, max_windows=2)
    frames, _ = windowed.frames(audio)
    padded = torch.nn.functional.pad(audio, (0, 23280 - 17120))
    encoder = model.method.encoder
    expected = torch.cat(
        [
            reduce(encoder(padded[:, start : start + 7920])[0], "b (n f) d -> b n d", "mean", f=8)
            for start in (0, 7680, 15360)
        ],
        dim=1,
    )[:, :7]
    torch.testing.assert_close(frames, expected, atol=1e-5, rtol=1e-5)


def test_long_audio_goes_through_windows(beats_file):
    """12 s: 75 frames (1400 + 2560 * 74 = 190840 <= 192000 samples), in windows of 62 frames (10 s)."""
    embeddings, timestamps = hear.get_timestamp_embeddings(
        white_noise(1, 12.0), hear.load_model(str(beats_file))
    )
    assert embeddings.shape[1] == 75 and timestamps[0, -1].item() == 87.5 + 160 * 74


def test_data2vec_frame_centres(data2vec_directory):
    """Strides 5, 4, 4: hop 80 samples; kernels 10, 3, 3: receptive field ((3 - 1) * 4 + 3 - 1) * 5 + 10 = 60
    samples; centres 30 + 80 i samples = 1.875 + 5 i ms; 1.07 s: i <= (17120 - 30) / 80, 214 frames."""
    model = hear.load_model(str(data2vec_directory))
    assert model.timestamp_embedding_size == 32
    embeddings, timestamps = hear.get_timestamp_embeddings(white_noise(1, 1.07), model)
    assert embeddings.shape == (1, 214, 32)
    torch.testing.assert_close(timestamps[0], torch.arange(214) * 5 + 1.875)


def test_a_finetuned_beats_file_loads_its_encoder(tmp_path, beats_file):
    path = tmp_path / "BEATs_finetuned.pt"
    torch.save(torch.load(FIXTURES / "beats" / "finetuned.pt", weights_only=True)["checkpoint"], path)
    model = hear.load_model(str(path))
    assert model.scene_embedding_size == 96 and hear.get_scene_embeddings(
        white_noise(1, 0.5), model
    ).shape == (1, 96)


def test_a_method_checkpoint_keeps_its_trained_encoder(method_checkpoint):
    """BYOL-A frames: log-mel hop 160 pooled 8x: hop 1280, span 1120, centres 560 + 1280 i samples
    = 35 + 80 i ms; 1 s: 560 + 1280 i <= 16000 for i <= 12, 13 frames."""
    model = hear.load_model(str(method_checkpoint))
    saved = torch.load(method_checkpoint, weights_only=False)["state_dict"]
    for name, tensor in model.method.encoder.state_dict().items():
        assert torch.equal(tensor, saved[f"encoder.{name}"]), name
    _, timestamps = hear.get_timestamp_embeddings(white_noise(1, 1.0), model)
    assert timestamps[0].tolist() == [35.0 + 80 * i for i in range(13)]


def test_bad_paths_encoders_and_audio_say_what_to_pass(tmp_path, beats_file):
    with pytest.raises(ValueError, match="no default model.*method checkpoint"):
        hear.load_model()
    with pytest.raises(FileNotFoundError, match="no model file at .*missing.pt"):
        hear.load_model(str(tmp_path / "missing.pt"))
    tokenizer = tmp_path / "Tokenizer.pt"
    torch.save(torch.load(FIXTURES / "beats" / "tokenizer.pt", weights_only=True)["checkpoint"], tokenizer)
    with pytest.raises(ValueError, match="tokenizer checkpoint, not an encoder"):
        hear.load_model(str(tokenizer))
    with pytest.raises(TypeError, match="frame layout of BEATsEncoder.*not Linear"):
        hear.HearModel(FrozenEncoder(torch.nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"audio must be \[n_sounds, n_samples\].*\(16000,\)"):
        hear.get_scene_embeddings(torch.zeros(16000), hear.load_model(str(beats_file)))


def test_slowfast_frame_centres_and_windows_against_a_worked_example(slowfast_checkpoint):
    """Slowfast tokens: 4 fbank frames (hop 160, 400-sample windows) = 640-sample hop, 880-sample span, centre
    440 + 640 i samples = 27.5 + 40 i ms. 1.07 s (17120 samples): 440 + 640 i <= 17120 for i <= 26, 27
    frames. With 0.5 s windows ((8000 - 880) // 640 + 1 = 12 frames, 11 * 640 + 880 = 7920 samples), frames
    0-11, 12-23 and 24-26 come from passes over samples [0, 7920), [7680, 15600), [15360, 23280)."""
    audio = white_noise(2, 1.07, seed=3)
    model = hear.load_model(str(slowfast_checkpoint))
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert timestamps[0].tolist() == [27.5 + 40 * i for i in range(27)] and embeddings.shape[1] == 27
    frames, _ = hear.HearModel(model.method, window_seconds=0.5).frames(audio)
    padded = torch.nn.functional.pad(audio, (0, 23280 - 17120))
    encoder = model.method.encoder
    expected = torch.cat([encoder(padded[:, start : start + 7920])[0] for start in (0, 7680, 15360)], dim=1)
    torch.testing.assert_close(frames, expected[:, :27], atol=1e-5, rtol=1e-5)


def test_spectrogram_frames_drop_the_cls_token_and_fit_the_image(spectrogram_checkpoint):
    """BEATs' frames (centres 87.5 + 160 i ms; 1.07 s: 7 frames), but the 64-frame image holds 4 frames a
    pass whatever window_seconds says: passes over [0, 10480) and [10240, 20720) (3 * 2560 + 2800 = 10480
    samples, zero-padded past 17120), each giving CLS + 4 x 8 patches; frame = mean of its 8 patches."""
    audio = white_noise(2, 1.07, seed=3)
    model = hear.load_model(str(spectrogram_checkpoint))
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert timestamps[0].tolist() == [87.5 + 160 * i for i in range(7)] and embeddings.shape[1] == 7
    padded = torch.nn.functional.pad(audio, (0, 20720 - 17120))
    encoder = model.method.encoder
    passes = [encoder(padded[:, start : start + 10480])[0] for start in (0, 10240)]
    assert [tokens.shape[1] for tokens in passes] == [33, 33]
    expected = torch.cat([reduce(t[:, 1:], "b (n f) d -> b n d", "mean", f=8) for t in passes], dim=1)
    torch.testing.assert_close(embeddings, expected[:, :7], atol=1e-5, rtol=1e-5)


def test_spectrogram_patches_are_time_major(spectrogram_checkpoint):
    """Samples [2800, 5120) lie in fbank frames 16-31 only (frame k covers [160 k, 160 k + 400)), the second
    time step of patches: with time-major tokens only patch tokens 8-15 change."""
    encoder = hear.load_model(str(spectrogram_checkpoint)).method.encoder
    audio = white_noise(1, 0.5)
    changed = audio.clone()
    changed[:, 2800:5120] = white_noise(1, 2320 / 16000, seed=9)
    difference = (encoder.embed_tokens(audio)[0] - encoder.embed_tokens(changed)[0]).abs().amax(dim=(0, 2))
    assert torch.nonzero(difference > 1e-6).flatten().tolist() == list(range(8, 16))


def test_encoders_without_time_or_a_known_layout_are_refused():
    text = Data2VecTextEncoder(
        Data2VecTextConfig(
            vocab_size=8, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
        )
    )
    with pytest.raises(
        TypeError, match="Data2VecTextEncoder encodes images or token ids, not audio.*SlowfastNFNet"
    ):
        hear.HearModel(FrozenEncoder(text))
    with pytest.raises(
        TypeError, match="BEATsEncoder, Data2VecSpectrogramEncoder.*SlowfastNFNet, not Linear"
    ):
        hear.HearModel(FrozenEncoder(torch.nn.Linear(2, 2)))
