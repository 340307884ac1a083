"""The settings of data2vec (1.0 and 2.0), one dataclass per concern, so a recipe reads like the paper's
table: how the student's input is masked, how the teacher's targets are built, the loss, the EMA
schedule and data2vec 2.0's decoder. The recipes give each modality's official values."""

from __future__ import annotations

from dataclasses import dataclass

MASKINGS = ("span", "block_1d", "beit_block", "inverse_block", "token", "random")
NORMS = ("instance", "layer", "batch")


@dataclass
class MaskingConfig:
    """The student's mask (True = masked, predicted).

    kind:
        - `span` (1.0 speech/audio): fairseq `compute_mask_indices`, spans of `mask_length` frames started
          with probability `mask_prob` (0.65, 10), the rows trimmed to the same count.
        - `block_1d` (2.0 audio): data2vec 2.0's precomputed 1-D block masks (0.5, 5), exactly
          int(mask_prob T) frames per row.
        - `beit_block` (1.0 vision): BEiT block-wise masking of round(mask_prob N) patches (0.6 of 196 =
          120, blocks of at least `min_block_patches` = 16).
        - `inverse_block` (2.0 vision): inverse block masking (keep 1 - mask_prob = 0.2 of the patches in
          `mask_length` x `mask_length` blocks; `mask_prob_adjust` 0.07), 157 of 196 masked.
        - `token` (1.0 text): BERT-style on the token ids: `mask_prob` of the tokens in spans of
          `mask_length`, of which `random_token_prob` become a random token and `leave_unmasked_prob` stay,
          the rest `<mask>` (the paper: 0.15, 1, 0.1, 0.1; the official config: 0.35, 4, 0, 0).
        - `random` (2.0 text): MAE-style, int(N (1 - mask_prob)) tokens kept at random (0.48).
    """

    kind: str = "span"
    mask_prob: float = 0.65
    mask_length: int = 10
    min_masks: int = 1
    mask_prob_adjust: float = 0.0
    min_block_patches: int = 16
    random_token_prob: float = 0.1
    leave_unmasked_prob: float = 0.1

    def __post_init__(self) -> None:
        if self.kind not in MASKINGS:
            raise ValueError(f"masking.kind={self.kind!r} is not one of {MASKINGS}")
        if not 0.0 < self.mask_prob < 1.0:
            raise ValueError(f"masking.mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.mask_length < 1:
            raise ValueError(f"masking.mask_length must be >= 1, got {self.mask_length}")


@dataclass
class TargetConfig:
    """The teacher's targets: the top `top_k` blocks' outputs at `sublayer` (`ffn`: the FFN output before
    the last residual, speech and text; `block`: the end of the block, vision), each normalised with
    `layer_norm` (`instance` over time for speech, `layer` for vision and text, `batch`, or None), averaged,
    then normalised again with each of `final_norm` (`layer`, `instance`) in order."""

    top_k: int = 8
    sublayer: str = "ffn"
    layer_norm: str | None = "instance"
    final_norm: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"targets.top_k must be >= 1, got {self.top_k}")
        if self.sublayer not in ("ffn", "block"):
            raise ValueError(f"targets.sublayer must be 'ffn' or 'block', got {self.sublayer!r}")
        if self.layer_norm is not None and self.layer_norm not in NORMS:
            raise ValueError(f"targets.layer_norm must be one of {NORMS} or null, got {self.layer_norm!r}")
        self.final_norm = tuple(self.final_norm)
        for norm in self.final_norm:
            if norm not in ("layer", "instance"):
                raise ValueError(f"targets.final_norm entries must be 'layer' or 'instance', got {norm!r}")


@dataclass
class LossConfig:
    """Regression of the targets at the masked positions: squared error (`beta` 0) or smooth L1 with
    `beta`, summed over features and scaled by `scale` (`sqrt_dim`: 1/sqrt(D), speech and 2.0; `dim`: 1/D,
    the mean over features of data2vec vision's code; or a number: text uses 1), averaged over the masked
    tokens. `cls_weight` > 0 adds data2vec 2.0's image CLS loss (0.01): the CLS output regresses the mean
    target of its sample."""

    beta: float = 0.0
    scale: float | str = "sqrt_dim"
    cls_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.beta < 0:
            raise ValueError(f"loss.beta must be >= 0, got {self.beta}")
        if isinstance(self.scale, str) and self.scale not in ("sqrt_dim", "dim"):
            raise ValueError(f"loss.scale must be 'sqrt_dim', 'dim' or a number, got {self.scale!r}")


@dataclass
class EMAConfig:
    """The teacher's decay: linear from `decay` to `end_decay` over `anneal_end_step` updates, then
    constant (fairseq `get_annealed_rate`); 1.0 stops the updates."""

    decay: float = 0.999
    end_decay: float = 0.9999
    anneal_end_step: int = 30000

    def __post_init__(self) -> None:
        if not 0.0 <= self.decay <= 1.0 or not 0.0 <= self.end_decay <= 1.0 or self.anneal_end_step < 0:
            raise ValueError(f"ema needs decays in [0, 1] and anneal_end_step >= 0, got {self}")


@dataclass
class DecoderConfig:
    """data2vec 2.0's light convolutional decoder (1-D for audio and text, 2-D on the patch grid for
    images): `layers` blocks of grouped conv (`kernel_size`, `groups`) -> LayerNorm -> GELU of width
    `decoder_dim`, residual between blocks when `residual`, then a projection to the model width
    (`projection_layers` 2 = Linear -> GELU -> Linear). Masked positions enter as N(0, `mask_noise_std`)
    noise."""

    decoder_dim: int = 384
    kernel_size: int = 7
    groups: int = 16
    layers: int = 4
    residual: bool = True
    input_dropout: float = 0.1
    projection_layers: int = 1
    mask_noise_std: float = 0.01
