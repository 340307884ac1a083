"""The HEAR 2021 API (hearbenchmark.com/hear-api), so that the HEAR evaluation kit scores our models
unchanged: `python -m heareval.embeddings.runner ssl_lightning.hear --model <file>`.

`load_model(path)` reads a checkpoint of any ssl_lightning method (`.ckpt`), an official BEATs file
(`.pt`, pre-trained or fine-tuned: its head is left out) or a Hugging Face data2vec audio directory, and
returns a frozen `HearModel` (attributes `sample_rate`, `scene_embedding_size`,
`timestamp_embedding_size`). Embeddings are the last-layer frames of its encoder (`SSLMethod.embed_sequence`):
`get_timestamp_embeddings` gives each frame with its centre in ms, `get_scene_embeddings` their mean.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from ssl_lightning.backbones import BEATsConfig, BEATsEncoder, Data2VecAudioEncoder
from ssl_lightning.backbones.beats import load_official_checkpoint, split_state_dict
from ssl_lightning.hear.frames import FrameGeometry, HearModel, frame_geometry
from ssl_lightning.methods import FrozenEncoder, load_method

__all__ = [
    "FrameGeometry",
    "HearModel",
    "frame_geometry",
    "get_scene_embeddings",
    "get_timestamp_embeddings",
    "load_model",
]

KINDS = "a method checkpoint (.ckpt), an official BEATs file (.pt) or a Hugging Face data2vec audio directory"


def load_beats(path: Path) -> BEATsEncoder:
    """The encoder of an official BEATs file, pre-trained or fine-tuned (the `predictor.*` head dropped).

    Raises:
        ValueError: the file is not an official BEATs checkpoint, or is a tokenizer's.
    """
    checkpoint = load_official_checkpoint(path)
    if any(key.startswith("quantize") for key in checkpoint["model"]):
        raise ValueError(f"{path} is a BEATs tokenizer checkpoint, not an encoder; pass {KINDS}")
    _, state = split_state_dict(checkpoint["model"], ("predictor.",))
    encoder = BEATsEncoder(BEATsConfig.from_dict(checkpoint["cfg"]))
    encoder.load_official_state_dict(state)
    return encoder


def load_model(model_file_path: str = "") -> HearModel:
    """The frozen model of a checkpoint (HEAR API), in eval mode on the CPU.

    Raises:
        ValueError: no path (there is no default model), or a file of none of the three kinds.
        FileNotFoundError: nothing at that path.
    """
    if not model_file_path:
        raise ValueError(f"ssl_lightning.hear has no default model; pass --model with {KINDS}")
    path = Path(model_file_path).expanduser()
    if path.is_dir():
        return HearModel(FrozenEncoder(Data2VecAudioEncoder.from_huggingface(path)))
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; pass {KINDS}")
    if path.suffix == ".ckpt":
        return HearModel(load_method(path))
    return HearModel(FrozenEncoder(load_beats(path)))


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """`audio[n_sounds, n_samples]` -> (float32 `[n_sounds, n_frames, D]`, frame centres in ms
    `[n_sounds, n_frames]`, evenly spaced; within the audio once it holds half a frame)."""
    return model.frames(audio)


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """`audio[n_sounds, n_samples]` -> float32 `[n_sounds, D]`: the mean of the timestamp embeddings."""
    return model.frames(audio)[0].mean(dim=1)
