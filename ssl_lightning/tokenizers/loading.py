"""What a method needs to know of any tokenizer: its codebook size and a plain config that rebuilds
it (loading one from a file is `ssl_lightning.methods.load_tokenizer`, which reads method checkpoints)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssl_lightning.tokenizers.beats_tokenizer import SelfDistilledTokenizer
from ssl_lightning.tokenizers.random_projection import RandomProjectionTokenizer


def codebook_size(tokenizer: nn.Module) -> int:
    """Number of distinct labels K of a tokenizer: its `codebook_size`, or `config.quant_n` (official)."""
    size = getattr(tokenizer, "codebook_size", None)
    if size is None:
        size = getattr(getattr(tokenizer, "config", None), "quant_n", None)
    if not isinstance(size, int) or size < 1:
        raise TypeError(
            f"cannot tell the codebook size of {type(tokenizer).__name__}: give it a `codebook_size` int "
            "attribute (or a `config.quant_n`)"
        )
    return size


def tokenizer_config(tokenizer: nn.Module) -> dict[str, Any]:
    """A plain `{"class_path", "init_args"}` config (jsonargparse style) that rebuilds the architecture of
    `tokenizer`; its weights are restored from a state dict. Plain values keep checkpoints loadable with
    `torch.load(weights_only=True)`, which resuming a run uses."""
    if isinstance(tokenizer, RandomProjectionTokenizer):
        init_args: dict[str, Any] = {
            "codebook_size": tokenizer.codebook_size,
            "codebook_dim": tokenizer.codebook_dim,
            "patch_size": tokenizer.patch_size,
            "seed": tokenizer.seed,
        }
    elif isinstance(tokenizer, SelfDistilledTokenizer):
        init_args = {"config": tokenizer.config.to_dict()}
    else:
        raise TypeError(
            f"no config is known for a {type(tokenizer).__name__} tokenizer; give it as a "
            "class_path/init_args config in the recipe instead of a tokenizer_checkpoint"
        )
    cls = type(tokenizer)
    return {"class_path": f"{cls.__module__}.{cls.__qualname__}", "init_args": init_args}
