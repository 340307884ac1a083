"""data2vec (Baevski et al., "data2vec: A General Framework for Self-supervised Learning in Speech,
Vision and Language", ICML 2022) and the efficiency options of data2vec 2.0 (Baevski et al., ICML 2023),
one LightningModule for speech/audio, vision and text.

1. The student encodes a masked version of the input (section 3.2).
2. The teacher, an fp32 EMA of the student (eq. 1: tau rising linearly from tau0 to tau_e over tau_n
   updates, then constant; what is averaged and what is copied per modality follows the official
   code: `encoder.ema_skip_keys`), encodes the unmasked input in eval mode without gradient.
3. Targets (section 3.3, eq. 2): the top K blocks' outputs at the official sub-layer, each normalised,
   averaged, optionally normalised again.
4. Loss (eq. 3): smooth L1 or L2 between the regression head's (1.0) or decoder's (2.0) predictions and
   the targets at the masked positions only.

data2vec 2.0 (`clone_batch` M > 1, `visible_only`, `decoder`): the teacher runs once per sample and its
targets are shared by M student clones, each with its own mask; the student encodes only the visible
tokens; a light conv decoder fills the masked positions (noise inputs) and predicts the targets there.

After pre-training only the encoder is kept: `embed` / `embed_sequence` run it on the whole input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ssl_lightning.methods.base import SSLMethod, encoder_input
from ssl_lightning.methods.data2vec_config import (
    DecoderConfig,
    EMAConfig,
    LossConfig,
    MaskingConfig,
    TargetConfig,
)
from ssl_lightning.methods.pretrained import load_pretrained_encoder
from ssl_lightning.nn.block_masking import beit_block_mask, inverse_block_mask_2d
from ssl_lightning.nn.conv_decoder import Decoder1d, Decoder2d
from ssl_lightning.nn.ema import EMATeacher, linear_tau
from ssl_lightning.nn.losses.data2vec import build_targets, feature_std, regression_loss
from ssl_lightning.nn.masking import kept_positions, random_mask
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.span_masking import block_mask_1d, span_mask
from ssl_lightning.nn.token_masking import token_mask
from ssl_lightning.nn.transformer import scale_gradient

EQUAL_COUNT_MASKINGS = ("span", "block_1d", "inverse_block", "random")


def regression_head(dim: int, layers: int) -> nn.Module:
    """data2vec 1.0's regression head: Linear(D, D) (speech, vision), or with `layers` 2 (text)
    Linear(D, 2D) -> GELU -> Linear(2D, D) (fairseq `head_layers`, the width doubling per hidden layer)."""
    if layers < 1:
        raise ValueError(f"head_layers must be >= 1, got {layers}")
    modules: list[nn.Module] = []
    width = dim
    for _ in range(layers - 1):
        modules += [nn.Linear(width, 2 * width), nn.GELU()]
        width *= 2
    return nn.Sequential(*modules, nn.Linear(width, dim))


@dataclass
class Data2VecOutput:
    """One pass: `loss` (regression + CLS), its `regression` and `cls` parts, the std of the targets and of
    the predictions at the masked positions (the collapse guards' statistics), `mask` [B M, N] of the
    student views (True = masked) and the number of masked positions in the loss."""

    loss: Tensor
    regression: Tensor
    cls: Tensor
    target_std: Tensor
    prediction_std: Tensor
    mask: Tensor
    num_masked: int


class Data2Vec(SSLMethod):
    """data2vec / data2vec 2.0 pre-training of a `Data2Vec{Audio,Vision,Text}Encoder`.

    Masks and decoder noise are drawn from a generator seeded by `(run seed, step, batch index, rank)`, so a
    resumed run continues exactly; the teacher is in the state dict.

    Args:
        encoder: a data2vec encoder (`ssl_lightning.backbones.Data2Vec*Encoder`): `embed_tokens`,
            `encode_tokens`, `modality`, `ema_skip_keys`, `teacher_shares_front_end`.
        masking, targets, loss, ema: see `ssl_lightning.methods.data2vec_config` (defaults: data2vec 1.0
            speech).
        head_layers: 1.0's regression head depth (1: speech and vision; 2: text); unused with a decoder.
        clone_batch: data2vec 2.0's M student views per teacher pass (1 in 1.0; 8 audio and text, 16 images).
        visible_only: the student encodes only the unmasked tokens (2.0); needs an equal-count masking.
        decoder: data2vec 2.0's conv decoder in place of the regression head (None in 1.0).
        mask_token_id: the `<mask>` id for `token` masking; None reads the datamodule's `mask_token_id`.
        augment: a random view of the input, `augment(x, generator)`, that teacher and student both see
            (data2vec vision: random resized crop, flip, colour jitter; `ssl_lightning.augment.ImageViews`).
        ema_skip_keys: state-dict prefixes the teacher copies from the student instead of averaging; None:
            the encoder's `ema_skip_keys` (1.0's rules; 2.0 speech also averages the positional conv).
        feature_grad_mult: scales the gradient reaching the front-end (`embed_tokens`: the speech conv
            feature encoder, the patch embedding); fairseq's `feature_grad_mult` (wav2vec 2.0: 0.1, data2vec
            speech: 1.0). The forward pass is unchanged.
        min_target_std, min_prediction_std, collapse_check_after: the official collapse guards: after that
            many updates, stop with an error when the targets' or predictions' std falls below the bound.
        pretrained_checkpoint: start from these encoder weights: a Hugging Face transformers directory or a
            method checkpoint (`load_pretrained_encoder`); loaded when a fit starts, not when it resumes.
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder's `encode_tokens`.
    """

    frozen_modules = ("teacher",)

    def __init__(
        self,
        encoder: nn.Module,
        masking: MaskingConfig | None = None,
        targets: TargetConfig | None = None,
        loss: LossConfig | None = None,
        ema: EMAConfig | None = None,
        head_layers: int = 1,
        clone_batch: int = 1,
        visible_only: bool = False,
        decoder: DecoderConfig | None = None,
        mask_token_id: int | None = None,
        augment: nn.Module | None = None,
        ema_skip_keys: list[str] | None = None,
        feature_grad_mult: float = 1.0,
        min_target_std: float = 0.1,
        min_prediction_std: float = 0.01,
        collapse_check_after: int = 5000,
        pretrained_checkpoint: str | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        for name in ("embed_tokens", "encode_tokens", "modality", "ema_skip_keys"):
            if not hasattr(encoder, name):
                raise TypeError(
                    f"Data2Vec needs a data2vec encoder (with `{name}`), got {type(encoder).__name__}"
                )
        self.masking = masking or MaskingConfig()
        self.targets = targets or TargetConfig()
        self.loss_config = loss or LossConfig()
        self.ema = ema or EMAConfig()
        self.clone_batch, self.visible_only, self.decoder_config = clone_batch, visible_only, decoder
        self.augment = augment
        self._check(encoder)
        self._freeze_unused(encoder)
        dim = encoder.embed_dim
        self.head = regression_head(dim, head_layers) if decoder is None else self._decoder(decoder, encoder)
        skip_keys = encoder.ema_skip_keys if ema_skip_keys is None else tuple(ema_skip_keys)
        self.teacher = EMATeacher(encoder, skip_keys=skip_keys)

    def _check(self, encoder: nn.Module) -> None:
        kind, modality = self.masking.kind, encoder.modality
        if self.clone_batch < 1:
            raise ValueError(f"clone_batch must be >= 1, got {self.clone_batch}")
        if (kind == "token") != (modality == "text") and not (modality == "text" and kind == "random"):
            raise ValueError(
                f"masking.kind={kind!r} does not fit a {modality} encoder: text masks token ids ('token', or "
                "'random' for data2vec 2.0); speech uses 'span'/'block_1d', vision 'beit_block'/"
                "'inverse_block'"
            )
        if kind in ("beit_block", "inverse_block") and modality != "vision":
            raise ValueError(f"masking.kind={kind!r} masks a 2-D patch grid; the encoder is {modality}")
        if self.visible_only and kind not in EQUAL_COUNT_MASKINGS:
            raise ValueError(
                f"visible_only needs the same number of masked tokens per row; masking.kind={kind!r} does "
                f"not give that. Use one of {EQUAL_COUNT_MASKINGS}"
            )
        if not self.visible_only and kind != "token" and getattr(encoder, "mask_embedding", None) is None:
            raise ValueError(
                f"{type(encoder).__name__} has no mask embedding to replace masked tokens with; set "
                "visible_only: true (data2vec 2.0) or use an encoder config with a mask token"
            )
        if self.targets.top_k > encoder.num_layers:
            raise ValueError(
                f"targets.top_k={self.targets.top_k} exceeds the encoder's {encoder.num_layers} blocks"
            )
        if self.loss_config.cls_weight > 0 and modality != "vision":
            raise ValueError(
                "loss.cls_weight (data2vec 2.0's CLS loss) needs an encoder with a CLS token (vision)"
            )

    def _freeze_unused(self, encoder: nn.Module) -> None:
        """Freeze what pre-training never uses (poolers; the mask embedding when only visible tokens are
        encoded or ids are masked), so DDP finds no unused parameters; the teacher still copies them."""
        unused = tuple(encoder.pretraining_unused)
        if (self.visible_only or self.masking.kind == "token") and encoder.mask_embedding:
            unused += (encoder.mask_embedding,)
        for name, parameter in encoder.named_parameters():
            if any(name == prefix or name.startswith(f"{prefix}.") for prefix in unused):
                parameter.requires_grad_(False)

    def _decoder(self, config: DecoderConfig, encoder: nn.Module) -> nn.Module:
        args = dict(
            input_dim=encoder.embed_dim,
            decoder_dim=config.decoder_dim,
            kernel_size=config.kernel_size,
            groups=config.groups,
            layers=config.layers,
            residual=config.residual,
            input_dropout=config.input_dropout,
            projection_layers=config.projection_layers,
        )
        if encoder.modality == "vision":
            return Decoder2d(**args, grid=tuple(encoder.grid))
        return Decoder1d(**args)

    def configure_model(self) -> None:
        """With `compile`, compile the encoder's Transformer pass (`encode_tokens`), which every step runs."""
        if self.compile and not hasattr(self, "_compiled"):
            self.encoder.encode_tokens = torch.compile(self.encoder.encode_tokens)
            self._compiled = True

    # ---- masks -------------------------------------------------------------------------------------------

    def draw_mask(
        self, rows: int, length: int, padding_mask: Tensor | None, generator: torch.Generator
    ) -> Tensor:
        """The student views' mask `[rows, length]` (True = masked) for the configured kind."""
        m, device = self.masking, self.device
        if m.kind == "span":
            return span_mask(
                rows, length, m.mask_prob, m.mask_length, m.min_masks, padding_mask, True, generator, device
            )
        if m.kind == "block_1d":
            return block_mask_1d(
                rows,
                length,
                m.mask_prob,
                m.mask_length,
                m.mask_prob_adjust,
                generator=generator,
                device=device,
            )
        if m.kind == "random":
            return random_mask(rows, length, m.mask_prob, generator, device)
        height, width = self.encoder.grid
        if m.kind == "beit_block":
            count = round(m.mask_prob * length)
            return beit_block_mask(
                rows, height, width, count, m.min_block_patches, generator=generator, device=device
            )
        return inverse_block_mask_2d(
            rows,
            height,
            width,
            m.mask_prob,
            m.mask_length,
            m.mask_prob_adjust,
            generator=generator,
            device=device,
        )

    def mask_token_id(self) -> int:
        """The `<mask>` id: the `mask_token_id` argument, else the datamodule's."""
        if self.hparams.mask_token_id is not None:
            return self.hparams.mask_token_id
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        token = getattr(datamodule, "mask_token_id", None)
        if token is None:
            raise ValueError(
                "masking.kind='token' needs the <mask> token id: set model.init_args.mask_token_id or use a "
                "datamodule with `mask_token_id` (ssl_lightning.data.TextDataModule)"
            )
        return int(token)

    def special_ids(self) -> tuple[int, ...]:
        """The ids token masking never selects: `<s>`, `<pad>`, `</s>` (the encoder config's) and `<mask>`."""
        config = self.encoder.config
        return (config.bos_token_id, config.pad_token_id, config.eos_token_id, self.mask_token_id())

    # ---- the pass ----------------------------------------------------------------------------------------

    def teacher_targets(
        self, x: Tensor, padding_mask: Tensor | None, tokens: tuple[Tensor, Tensor | None] | None
    ) -> Tensor:
        """Eq. 2: the teacher's top-K normalised, averaged sub-layer outputs `[B, N, D]` (float32) on the
        unmasked input (`tokens`: the student's local features and their padding mask, which the teacher
        takes for encoders whose teacher shares the front-end)."""
        teacher = self.teacher.module
        with torch.no_grad():
            if self.encoder.teacher_shares_front_end:
                source, source_padding = tokens[0].detach().float(), tokens[1]
            else:
                source, source_padding = teacher.embed_tokens(x, padding_mask)
            encoding = teacher.encode_tokens(source, source_padding)
            layers = encoding.ffn_outputs if self.targets.sublayer == "ffn" else encoding.block_outputs
            layers = [layer[:, encoding.num_extra_tokens :] for layer in layers]
            t = self.targets
            return build_targets(
                layers, t.top_k, t.layer_norm, t.final_norm, padding_mask=encoding.padding_mask
            )

    def forward(self, batch: dict[str, Tensor], generator: torch.Generator | None = None) -> Data2VecOutput:
        """Mask, encode the student views, build the teacher's targets, regress them where masked."""
        x, padding_mask = encoder_input(batch)
        if self.augment is not None:
            x = self.augment(x, generator)
        clones = self.clone_batch
        if self.masking.kind == "token":
            ids = x.repeat_interleave(clones, 0)
            pad = None if padding_mask is None else padding_mask.repeat_interleave(clones, 0)
            m = self.masking
            masked_ids, mask = token_mask(
                ids,
                self.mask_token_id(),
                self.encoder.config.vocab_size,
                m.mask_prob,
                m.mask_length,
                m.random_token_prob,
                m.leave_unmasked_prob,
                self.special_ids(),
                pad,
                generator,
            )
            student, student_padding = self.encoder.embed_tokens(masked_ids, pad)
            student = self.scaled_front_end(student)
            # the official code regresses where the input is <mask> (not the random/kept 20% of BERT's 15%)
            mask = mask & (masked_ids == self.mask_token_id())
            tokens = None
        else:
            tokens, token_padding = self.encoder.embed_tokens(x, padding_mask)
            student = self.scaled_front_end(tokens).repeat_interleave(clones, 0)
            student_padding = None if token_padding is None else token_padding.repeat_interleave(clones, 0)
            mask = self.draw_mask(student.shape[0], student.shape[1], student_padding, generator)
        targets = self.teacher_targets(x, padding_mask, None if tokens is None else (tokens, token_padding))
        predictions, encoding = self.student_predictions(student, student_padding, mask, generator)
        selected = mask if student_padding is None else mask & ~student_padding
        target = targets.repeat_interleave(clones, 0)[selected]
        prediction = predictions[selected].float()
        beta, scale = self.loss_config.beta, self.loss_config.scale
        num_masked = int(selected.sum())
        regression = regression_loss(prediction, target, beta, scale).sum() / max(num_masked, 1)
        cls = regression.new_zeros(())
        if self.loss_config.cls_weight > 0:
            cls_target = targets.mean(dim=1).repeat_interleave(clones, 0)
            cls_prediction = encoding.output[:, encoding.num_extra_tokens - 1].float()
            cls = self.loss_config.cls_weight * regression_loss(cls_prediction, cls_target, beta, scale).sum()
        with torch.no_grad():
            target_std, prediction_std = feature_std(target), feature_std(prediction)
        return Data2VecOutput(regression + cls, regression, cls, target_std, prediction_std, mask, num_masked)

    def scaled_front_end(self, tokens: Tensor) -> Tensor:
        """The front-end's output with its gradient scaled by `feature_grad_mult` (identity at 1)."""
        mult = self.hparams.feature_grad_mult
        return tokens if mult == 1.0 else scale_gradient(tokens, mult)

    def student_predictions(
        self, student: Tensor, padding_mask: Tensor | None, mask: Tensor, generator: torch.Generator | None
    ) -> tuple[Tensor, Any]:
        """Predictions `[B M, N, D]` at every position from the student's masked views (1.0: mask embeddings
        + regression head; 2.0: visible tokens only, noise at the masked positions, conv decoder)."""
        if self.visible_only:
            keep = kept_positions(mask)
            encoding = self.encoder.encode_tokens(student, padding_mask, keep_index=keep)
            visible = encoding.output[:, encoding.num_extra_tokens :]
            noise = torch.randn(
                student.shape, generator=generator, device=student.device, dtype=visible.dtype
            )
            full = noise * self.decoder_config.mask_noise_std
            full = full.scatter(1, keep[..., None].expand(-1, -1, visible.shape[-1]), visible)
        else:
            token_mask_given = self.masking.kind != "token"
            encoding = self.encoder.encode_tokens(
                student, padding_mask, mask=mask if token_mask_given else None
            )
            full = encoding.output[:, encoding.num_extra_tokens :]
        if self.decoder_config is None:
            return self.head(full), encoding
        # 2.0 drops out the encoder outputs only, not the noise at the masked positions
        decoder_mask = mask if self.visible_only else None
        if self.encoder.modality == "vision":
            return self.head(full, mask=decoder_mask), encoding
        return self.head(full, padding_mask, mask=decoder_mask), encoding

    # ---- training ----------------------------------------------------------------------------------------

    def tau(self, updates: int) -> float:
        """The teacher's decay after `updates` optimizer steps (eq. 1's linear schedule)."""
        return linear_tau(updates, self.ema.anneal_end_step, self.ema.decay, self.ema.end_decay)

    def check_collapse(self, output: Data2VecOutput) -> None:
        """The official guards: after `collapse_check_after` updates, stop when the targets' std falls below
        `min_target_std` or the predictions' below `min_prediction_std` (a collapsed representation)."""
        if self.global_step < self.hparams.collapse_check_after:
            return
        for name, value, bound in (
            ("target", output.target_std, self.hparams.min_target_std),
            ("prediction", output.prediction_std, self.hparams.min_prediction_std),
        ):
            if float(value) < bound:
                raise RuntimeError(
                    f"data2vec collapsed at step {self.global_step}: the {name} std is {float(value):.4g} < "
                    f"{bound} (min_{name}_std). Lower the learning rate, raise the EMA decay (ema.decay) or "
                    "check the targets (targets.top_k, targets.layer_norm)"
                )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        output = self(batch, self.mask_generator(self.global_step, batch_idx))
        self.check_collapse(output)
        size = output.mask.shape[0] // self.clone_batch
        self.log("train/loss", output.loss, prog_bar=True, batch_size=size)
        if self.loss_config.cls_weight > 0:
            self.log("train/cls_loss", output.cls, batch_size=size)
        self.log("train/target_std", output.target_std, batch_size=size)
        self.log("train/prediction_std", output.prediction_std, batch_size=size)
        return output.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        output = self(batch, self.mask_generator(-1, batch_idx))
        size = output.mask.shape[0] // self.clone_batch
        self.log("val/loss", output.loss, prog_bar=True, batch_size=size, sync_dist=True)
        self.log("val/target_std", output.target_std, batch_size=size, sync_dist=True)

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Any = None
    ) -> None:
        """The optimizer step, then the teacher update with the decay for the new update count (once per
        optimizer step, and before any checkpoint of this step is written; see `BYOL.optimizer_step`)."""
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        tau = self.tau(self.trainer.global_step + 1)
        if tau < 1.0:
            self.teacher.update(self.encoder, tau)
        self.log("train/tau", tau)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._resumed = True

    def on_fit_start(self) -> None:
        """Load `pretrained_checkpoint` into the student and copy it to the teacher (not when resuming);
        check that the datamodule's vocabulary fits a text encoder."""
        super().on_fit_start()
        datamodule = getattr(self.trainer, "datamodule", None)
        vocab = getattr(datamodule, "vocab_size", None)
        if self.encoder.modality == "text" and vocab is not None and vocab > self.encoder.config.vocab_size:
            raise ValueError(
                f"the datamodule's tokenizer has {vocab} tokens but the encoder's config.vocab_size is "
                f"{self.encoder.config.vocab_size}; set "
                f"model.init_args.encoder.init_args.config.vocab_size: {vocab}"
            )
        if self.hparams.pretrained_checkpoint and not getattr(self, "_resumed", False):
            load_pretrained_encoder(self.encoder, self.hparams.pretrained_checkpoint)
            self.teacher.update(self.encoder, 0.0)
