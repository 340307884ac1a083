"""BEATs masked audio modelling (Chen et al., "BEATs: Audio Pre-Training with Acoustic Tokenizers",
ICML 2023, section 3.3.2), the pre-training of every BEATs iteration.

1. Targets: a frozen acoustic tokenizer labels every 16x16 fbank patch, `z_t` (iteration 1: the
   random-projection tokenizer, eq. 1; later iterations: a self-distilled tokenizer, eq. 2).
2. Masking: 75% of the patches of each clip, uniformly at random (`random_patch_mask`).
3. Encoder: the BEATs ViT encodes only the visible patches, `R_U` (MAE-style speed-up).
4. Label predictor: a small Transformer over the full-length sequence, with the visible
   representations in their original places and zeros at the masked positions, then a linear layer
   to the K labels.
5. Loss (eq. 4): cross-entropy of the labels at the masked (non-padded) positions, averaged.

After pre-training only the encoder is kept: `embed` / `embed_sequence` run it on all patches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.backbones.beats import BEATsEncoder, BEATsEncoderConfig
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.methods.tokenizer_checkpoint import load_tokenizer
from ssl_lightning.nn.masking import random_patch_mask
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.tokenizers.loading import codebook_size, tokenizer_config


def scatter_visible(visible: Tensor, keep_index: Tensor, num_patches: int) -> Tensor:
    """The label predictor's input: `visible[B, K, D]` placed at `keep_index[B, K]` in a `[B, N, D]`
    sequence of zeros (the paper's `{r_t : t not in M} U {0 : t in M}`)."""
    index = keep_index[..., None].expand(-1, -1, visible.shape[-1])
    zeros = visible.new_zeros(visible.shape[0], num_patches, visible.shape[-1])
    return zeros.scatter(1, index, visible)


def masked_cross_entropy(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Eq. 4 averaged over the positions: mean cross-entropy of `labels[B, N]` under `logits[B, N, K]`
    at the positions where `mask[B, N]` is True (0 when no position is selected)."""
    loss = F.cross_entropy(rearrange(logits, "b n k -> b k n"), labels, reduction="none")
    weight = mask.to(loss.dtype)
    return (loss * weight).sum() / weight.sum().clamp_min(1.0)


def masked_accuracy(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Fraction of the masked positions whose most likely label is the target."""
    correct = (logits.argmax(dim=-1) == labels) & mask
    return correct.sum() / mask.sum().clamp_min(1)


class LabelPredictor(nn.Module):
    """Transformer + linear classifier: `x[B, N, D]` -> label logits `[B, N, K]`.

    Its Transformer is the encoder's kind (conv positional embedding, relative position bias,
    DeepNorm or pre-LN, dropouts) with `num_layers` layers of the encoder's width, heads and FFN size,
    so the zeros at masked positions learn where they are from the conv positions and the bias.
    """

    def __init__(self, config: BEATsEncoderConfig, num_layers: int, num_labels: int) -> None:
        super().__init__()
        self.transformer = config.transformer(num_layers)
        self.classifier = nn.Linear(config.encoder_embed_dim, num_labels)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`x[B, N, D]`, bool `padding_mask[B, N]` -> logits `[B, N, K]`."""
        return self.classifier(self.transformer(x, padding_mask))


@dataclass
class MAMOutput:
    """One masked-audio-modelling pass: `logits[B, N, K]`, tokenizer `labels[B, N]`, `mask[B, N]` (True
    at masked, non-padded patches: the positions of the loss), the number of patches the encoder
    processed per clip (K visible), and the scalar `loss`."""

    logits: Tensor
    labels: Tensor
    mask: Tensor
    num_encoded: int
    loss: Tensor


class MaskedAudioModeling(SSLMethod):
    """BEATs pre-training: predict a frozen tokenizer's patch labels at masked patches from visible ones.

    Masks are drawn from a generator seeded by `(torch.initial_seed(), step, batch index, rank)`, so
    they do not depend on the global RNG history: a run resumed from a checkpoint masks exactly as the
    uninterrupted run (validation uses the same masks at every epoch).

    The tokenizer is frozen (`requires_grad_(False)`, kept in eval mode by `train()`); its weights are in
    the state dict and a checkpoint describes it in place of `tokenizer_checkpoint`, so `load_method`
    needs no tokenizer file.

    Args:
        encoder: the BEATs encoder to pre-train (its `encode_patches(..., keep_index)` encodes the
            visible patches only).
        tokenizer: any module with `extract_labels(waveform[B, T], padding_mask) -> [B, N]` in the
            encoder's patch order and a codebook size (`codebook_size` or `config.quant_n`).
        tokenizer_checkpoint: instead of `tokenizer`, a file for `load_tokenizer` (official tokenizer or
            our tokenizer-training `.ckpt`). Exactly one of the two.
        mask_ratio: fraction of patches masked per clip (0.75).
        predictor_layers: Transformer layers of the label predictor (the paper gives no size; 2 layers of
            the encoder's width, as in the ESPnet/OpenBEATs port).
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder's Transformer and the label predictor (`configure_model`).
    """

    frozen_modules = ("tokenizer",)

    def __init__(
        self,
        encoder: BEATsEncoder,
        tokenizer: nn.Module | None = None,
        tokenizer_checkpoint: str | None = None,
        mask_ratio: float = 0.75,
        predictor_layers: int = 2,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        if not isinstance(encoder, BEATsEncoder):
            raise TypeError(
                "MaskedAudioModeling needs a BEATsEncoder (visible-only encoding), got "
                f"{type(encoder).__name__}"
            )
        if (tokenizer is None) == (tokenizer_checkpoint is None):
            raise ValueError(
                "MaskedAudioModeling needs exactly one of `tokenizer` (a module) and `tokenizer_checkpoint` "
                f"(a path); got tokenizer={type(tokenizer).__name__}, "
                f"tokenizer_checkpoint={tokenizer_checkpoint!r}"
            )
        if tokenizer is None:
            tokenizer = load_tokenizer(tokenizer_checkpoint)
        if not callable(getattr(tokenizer, "extract_labels", None)):
            raise TypeError(
                f"the tokenizer {type(tokenizer).__name__} has no extract_labels(waveform, padding_mask)"
            )
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio!r}")
        if not isinstance(predictor_layers, int) or predictor_layers < 1:
            raise ValueError(f"predictor_layers must be a positive int, got {predictor_layers!r}")
        self.mask_ratio = mask_ratio
        self.tokenizer = tokenizer.requires_grad_(False).eval()
        self.label_predictor = LabelPredictor(encoder.config, predictor_layers, codebook_size(tokenizer))

    def configure_model(self) -> None:
        """With `compile`, compile what runs every step: the encoder's Transformer (which the visible-only
        path calls through `encode_patches`, not through the encoder's `forward`) and the label predictor."""
        if self.compile and not isinstance(self.label_predictor, torch._dynamo.eval_frame.OptimizedModule):
            self.encoder.encoder = torch.compile(self.encoder.encoder)
            self.label_predictor = torch.compile(self.label_predictor)

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> MAMOutput:
        """Tokenize, mask, encode the visible patches, predict the labels everywhere, eq. 4 at the mask."""
        audio, padding_mask = batch["audio"], batch.get("padding_mask")
        with torch.no_grad():
            labels = self.tokenizer.extract_labels(audio, padding_mask)
        patches, patch_padding = self.encoder.embed_patches(audio, padding_mask)
        batch_size, num_patches = patches.shape[:2]
        if labels.shape != (batch_size, num_patches):
            raise ValueError(
                f"the tokenizer gave labels {tuple(labels.shape)} but the encoder has {num_patches} patches "
                "per clip; tokenizer and encoder must use the same patch size and fbank"
            )
        keep_index, _, mask = random_patch_mask(
            batch_size, num_patches, self.mask_ratio, generator, patch_padding, device=patches.device
        )
        visible = self.encoder.encode_patches(patches, patch_padding, keep_index)
        logits = self.label_predictor(scatter_visible(visible, keep_index, num_patches), patch_padding)
        if patch_padding is not None:
            mask = mask & ~patch_padding
        loss = masked_cross_entropy(logits, labels, mask)
        return MAMOutput(logits, labels, mask, keep_index.shape[1], loss)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        output = self(batch, self.mask_generator(self.global_step, batch_idx))
        batch_size = batch["audio"].shape[0]
        self.log("train/loss", output.loss, prog_bar=True, batch_size=batch_size)
        accuracy = masked_accuracy(output.logits, output.labels, output.mask)
        self.log("train/accuracy", accuracy, prog_bar=True, batch_size=batch_size)
        return output.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        output = self(batch, self.mask_generator(-1, batch_idx))
        batch_size = batch["audio"].shape[0]
        accuracy = masked_accuracy(output.logits, output.labels, output.mask)
        self.log("val/loss", output.loss, prog_bar=True, batch_size=batch_size, sync_dist=True)
        self.log("val/accuracy", accuracy, batch_size=batch_size, sync_dist=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Replace a `tokenizer_checkpoint` path by the tokenizer itself in the saved hyper-parameters, so
        restoring needs no tokenizer file: a plain config for CLI runs (whose checkpoints hold only
        plain values, as `torch.load(weights_only=True)` needs to resume them), else the module. The
        tokenizer's weights are in the state dict either way, so resuming a run (`ckpt_path`) continues
        with the tokenizer the checkpoint was trained with."""
        super().on_save_checkpoint(checkpoint)
        hparams = checkpoint["hyper_parameters"]
        if hparams.get("tokenizer_checkpoint") is not None:
            tokenizer = tokenizer_config(self.tokenizer) if "_instantiator" in hparams else self.tokenizer
            checkpoint["hyper_parameters"] = {**hparams, "tokenizer": tokenizer, "tokenizer_checkpoint": None}
