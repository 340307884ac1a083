"""Fine-tuning starts from pre-trained weights: an encoder from a method checkpoint or an official file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ssl_lightning.backbones.beats import load_official_checkpoint, split_state_dict

ENCODER_PREFIX = "encoder."
COMPILED_PREFIX = "_orig_mod."


def load_pretrained_encoder(encoder: nn.Module, path: str | Path) -> None:
    """Load the encoder weights stored in `path` into `encoder`, strictly (same architecture).

    `path` is a checkpoint of any ssl_lightning method (`*.ckpt`: its `encoder.*` weights, e.g. BEATs
    pre-training `runs/beats/iter2/checkpoints/last.ckpt`), an official BEATs file (`BEATs_iter3.pt`,
    pre-trained or fine-tuned; a fine-tuned file's classification head is left out), or a Hugging Face
    transformers directory for an encoder that reads them (`load_huggingface`: the data2vec encoders).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no encoder weights, or they do not fit `encoder` (the message lists
            missing and unexpected keys: the recipe's encoder config must be the pre-trained one).
    """
    path = Path(path)
    target = getattr(encoder, "_orig_mod", encoder)
    if path.is_dir():
        if not hasattr(target, "load_huggingface"):
            raise ValueError(
                f"{path} is a directory (a Hugging Face model?); {type(target).__name__} does not read "
                "those. "
                "Pass a method checkpoint (.ckpt) or use a data2vec encoder"
            )
        target.load_huggingface(path)
        return
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained checkpoint {str(path)!r} does not exist; run the pre-training recipe first or point "
            "model.init_args.pretrained_checkpoint at an official BEATs .pt file"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(checkpoint, dict) and "state_dict" in checkpoint:
        state = {
            name.removeprefix(ENCODER_PREFIX).removeprefix(COMPILED_PREFIX): tensor
            for name, tensor in checkpoint["state_dict"].items()
            if name.startswith(ENCODER_PREFIX)
        }
        if not state:
            raise ValueError(f"{path} holds no 'encoder.*' weights; pass the checkpoint of a method with one")
        hint = "use the encoder config the checkpoint was trained with"
        try:
            missing, unexpected = target.load_state_dict(state, strict=False)
        except RuntimeError as err:  # shape mismatches
            raise ValueError(
                f"the encoder weights in {path} do not fit the recipe's encoder: {err}; {hint}"
            ) from err
        if missing or unexpected:
            raise ValueError(
                f"the encoder weights in {path} do not fit the recipe's encoder: missing "
                f"{sorted(missing)[:8]}, unexpected {sorted(unexpected)[:8]}; {hint}"
            )
        return
    if not hasattr(target, "load_official_state_dict"):
        raise ValueError(
            f"{path} is not a Lightning checkpoint (no 'state_dict'); official BEATs files load only into "
            f"BEATsEncoder, not {type(target).__name__}"
        )
    official = load_official_checkpoint(checkpoint)
    _, encoder_state = split_state_dict(official["model"], ("predictor.",))
    target.load_official_state_dict(encoder_state)
