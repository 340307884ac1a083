"""BEATs self-distilled acoustic tokenizer training (Chen et al., "BEATs: Audio Pre-Training with
Acoustic Tokenizers", ICML 2023, section 3.2.2), the tokenizer of iterations 2, 3 and 3+.

1. Teacher: the previous iteration's model, frozen and in eval mode. Its targets `ô_t` are its
   last-layer outputs `[B, N, D_t]` (a pre-trained BEATs: iterations 2 and 3), or, for a fine-tuned
   teacher (iteration 3+: "learns to estimate the classification logits"), its classification logits
   per patch `[B, N, C]`: the classifier's linear head applied to every patch before its mean pooling
   (`BEATsClassifier.frame_logits`), so the objective stays patch-level like eq. 3.
2. Tokenizer encoder: the 12-layer BEATs Transformer and its `quantize_layer` give `e_t` `[B, N, Q]`.
3. Quantization (eq. 2): the nearest of K unit codewords to `l2(e_t)`, codebook initialised by k-means
   on the first batch and updated by EMA (never by the loss), straight-through gradients.
4. Estimator: a 3-layer Transformer on the quantized vectors predicts `o_t` `[B, N, D_t]`.
5. Loss: eq. 3 negated and averaged over the non-padded patches (`self_distillation_loss`).

The trained tokenizer is the attribute `tokenizer` (a `SelfDistilledTokenizer`; the estimator is
discarded); `embed` / `embed_sequence` return its encoder's features.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.backbones.beats import BEATsClassifier, BEATsConfig, BEATsEncoder, load_official_checkpoint
from ssl_lightning.methods.base import SSLMethod, load_method
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.vector_quantizer import codebook_usage
from ssl_lightning.tokenizers.beats_tokenizer import SelfDistilledTokenizer, SelfDistilledTokenizerConfig

TeacherTarget = Literal["features", "logits"]
TEACHER_TARGETS = ("features", "logits")
_TEACHER_PREFIX = "teacher."
_FINGERPRINT_KEY = "teacher_fingerprint"
_STAGE_DIR = re.compile(r"runs/beats/(?P<stage>[^/]+)/checkpoints/[^/]+$")


class SelfDistillationLoss(NamedTuple):
    """Eq. 3 terms, each averaged over the non-padded patches (scalars).

    `loss` = -`cosine` + `codebook` + `commitment`, the negated eq. 3 to minimise;
    `cosine` = mean cos(o_t, ô_t); `codebook` = MSE(sg[l2(e_t)], l2(v_zt)) (its gradient would reach
    only the codewords, which here are EMA buffers); `commitment` = MSE(l2(e_t), sg[l2(v_zt)]).
    """

    loss: Tensor
    cosine: Tensor
    codebook: Tensor
    commitment: Tensor


def self_distillation_loss(
    prediction: Tensor, target: Tensor, encoded: Tensor, codewords: Tensor, valid: Tensor | None = None
) -> SelfDistillationLoss:
    """Eq. 3 of BEATs, negated, averaged over the patches where `valid` is True; per patch

        -cos(o_t, ô_t) + ||sg[l2(e_t)] - l2(v_zt)||^2 / Q + ||l2(e_t) - sg[l2(v_zt)]||^2 / Q

    The paper's text calls the two l2 terms "the mean squared error" between E and E_q, and the
    official quantizer returns `beta * mse_loss` (beta = 1), so the squared distances are averaged
    over the Q dims; summed (the bare `||.||^2` of eq. 3) they weigh Q times more, and in a tiny
    test run the codebook then collapsed to about 2 effective codes out of 32. The paper sums over
    patches; the mean over patches only rescales the gradient.

    Args:
        prediction: estimator outputs `o_t` `[B, N, C]`.
        target: teacher outputs `ô_t` `[B, N, C]`.
        encoded: tokenizer encoder outputs `e_t` `[B, N, Q]` (before l2 normalisation).
        codewords: the selected codewords `v_zt` `[B, N, Q]`.
        valid: bool `[B, N]`, False at padded patches; all patches count when None.
    """
    if prediction.shape != target.shape or encoded.shape != codewords.shape:
        raise ValueError(
            f"shape mismatch: prediction {tuple(prediction.shape)} vs target {tuple(target.shape)}, encoded "
            f"{tuple(encoded.shape)} vs codewords {tuple(codewords.shape)}"
        )
    e = F.normalize(encoded.float(), dim=-1)
    v = F.normalize(codewords.float(), dim=-1)
    terms = torch.stack(
        [
            F.cosine_similarity(prediction.float(), target.float(), dim=-1),
            (e.detach() - v).pow(2).mean(dim=-1),
            (e - v.detach()).pow(2).mean(dim=-1),
        ]
    )
    weight = torch.ones_like(terms[0]) if valid is None else valid.to(terms.dtype)
    cosine, codebook, commitment = (terms * weight).sum(dim=(1, 2)) / weight.sum().clamp(min=1.0)
    return SelfDistillationLoss(-cosine + codebook + commitment, cosine, codebook, commitment)


class FrameLogits(nn.Module):
    """A classifier as a teacher of patch-level logits: `waveform[B, T]` -> `(head(features)[B, N, C], mask)`.

    Follows the encoder contract with `embed_dim` = C, so the training code treats every teacher alike.
    """

    def __init__(self, encoder: nn.Module, head: nn.Linear) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.embed_dim = head.out_features

    def forward(self, waveform: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Per-patch logits `[B, N, C]` and the patch padding mask `[B, N]` (None without a mask)."""
        features, padding_mask = self.encoder(waveform, padding_mask)
        return self.head(features), padding_mask


def as_teacher(module: nn.Module, target: TeacherTarget) -> nn.Module:
    """The part of `module` that gives the targets, as an encoder-contract module with `embed_dim`.

    "features": an encoder as is; a `BEATsClassifier` or any ssl_lightning method -> its `encoder`.
    "logits": a `BEATsClassifier` -> `FrameLogits(encoder, predictor)`; a method with a linear `head`
    (`SupervisedClassifier`) -> `FrameLogits(encoder, head)`; a `FrameLogits` as is.
    """
    if target not in TEACHER_TARGETS:
        raise ValueError(f"teacher_target must be one of {TEACHER_TARGETS}, got {target!r}")
    if target == "features":
        teacher = module.encoder if isinstance(module, (BEATsClassifier, SSLMethod)) else module
        if not isinstance(getattr(teacher, "embed_dim", None), int):
            raise TypeError(
                f"the teacher {type(teacher).__name__} is not an audio encoder (no int `embed_dim`); pass an "
                "encoder following the backbone contract, e.g. a BEATsEncoder"
            )
        return teacher
    if isinstance(module, FrameLogits):
        return module
    if isinstance(module, BEATsClassifier):
        return FrameLogits(module.encoder, module.predictor)
    if isinstance(module, SSLMethod) and isinstance(getattr(module, "head", None), nn.Linear):
        return FrameLogits(module.encoder, module.head)
    raise TypeError(
        f"teacher_target='logits' needs a fine-tuned classifier (BEATsClassifier or a SupervisedClassifier "
        f"with its head built), got {type(module).__name__}; use teacher_target='features' for an encoder"
    )


def _missing_teacher_hint(path: Path) -> str:
    """How to produce a missing teacher file, from the run-directory convention of the BEATs recipes:
    `recipes/beats_<stage>.yaml` writes `runs/beats/<stage>/checkpoints/last.ckpt`."""
    match = _STAGE_DIR.search(path.as_posix())
    if match is not None:
        recipe = (
            "recipes/" + ("" if match["stage"].startswith("beats_") else "beats_") + match["stage"] + ".yaml"
        )
        return f"run `lightning fit --config {recipe}` first (it writes {path})"
    return "train the previous BEATs iteration first, or pass an official BEATs checkpoint file"


def load_teacher(path: str | Path, target: TeacherTarget) -> nn.Module:
    """The teacher stored in `path`, frozen, in eval mode, as `as_teacher` gives it.

    A `.ckpt` file is a Lightning checkpoint of an ssl_lightning method (`load_method`); any other file
    is an official BEATs checkpoint (`{"cfg", "model"}`), fine-tuned when its cfg says `finetuned_model`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"teacher checkpoint {str(path)!r} does not exist; {_missing_teacher_hint(path)}"
        )
    if path.suffix == ".ckpt":
        module: nn.Module = load_method(path)
    else:
        checkpoint = load_official_checkpoint(path)
        finetuned = BEATsConfig.from_dict(checkpoint["cfg"]).finetuned_model
        if target == "logits" and not finetuned:
            raise ValueError(
                f"{path} is a pre-trained BEATs checkpoint (cfg finetuned_model=False), which has no logits; "
                "use teacher_target='features', or a fine-tuned checkpoint for teacher_target='logits'"
            )
        loader = BEATsClassifier if finetuned else BEATsEncoder
        module = loader.from_official_checkpoint(checkpoint)
    return as_teacher(module, target).requires_grad_(False).eval()


def teacher_fingerprint(teacher: nn.Module) -> Tensor:
    """float64 `[S, 2]`: the sum and the sum of squares of each of the teacher's S state tensors (on CPU),
    enough to tell two teachers apart without storing their weights."""
    state = [tensor.detach().double() for tensor in teacher.state_dict().values()]
    return torch.stack([torch.stack([t.sum(), t.pow(2).sum()]) for t in state]).cpu()


class TokenizerEstimator(nn.Module):
    """The paper's tokenizer estimator: quantized vectors `[B, N, Q]` -> teacher predictions `[B, N, C]`.

    A linear map Q -> D, a Transformer of the tokenizer encoder's kind (conv positional embedding,
    relative position bias, DeepNorm or pre-LN, dropouts) with `num_layers` layers of the encoder's
    width, heads and FFN size, then Linear D -> D, Tanh, Linear D -> C (the mirror of `quantize_layer`,
    as BEiT v2's VQ-KD decoder head).
    """

    def __init__(self, config: SelfDistilledTokenizerConfig, num_layers: int, target_dim: int) -> None:
        super().__init__()
        self.target_dim = target_dim
        dim = config.encoder_embed_dim
        self.input_proj = nn.Linear(config.quant_dim, dim)
        self.transformer = config.transformer(num_layers)
        self.output_head = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, target_dim))

    def forward(self, quantized: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """`quantized[B, N, Q]`, bool `padding_mask[B, N]` -> predictions `[B, N, C]`."""
        return self.output_head(self.transformer(self.input_proj(quantized), padding_mask))


class DistillationOutput(NamedTuple):
    """One forward pass: the eq. 3 terms, the code `indices[B, N]` and `valid[B, N]` (None: no padding)."""

    losses: SelfDistillationLoss
    indices: Tensor
    valid: Tensor | None


class SelfDistilledTokenizerTraining(SSLMethod):
    """Train a BEATs self-distilled tokenizer by distillation from a frozen teacher (eq. 3).

    The teacher is frozen (`requires_grad_(False)`) and kept in eval mode by `train()`. It is an input
    of the stage, like the data, and never part of a checkpoint (neither its weights nor, when given
    as a module, the module): a `teacher_checkpoint` is loaded when fitting or validating starts
    (`setup`), so `load_method` of a trained stage needs no teacher file and restores the tokenizer
    and the estimator only (`target_dim` is saved for that). Resuming a run loads the teacher again
    and checks it against a fingerprint stored in the checkpoint.

    Args:
        tokenizer: the tokenizer to train, or its config (a fresh codebook is initialised by k-means on
            the first training batch).
        teacher: the frozen teacher module (see `as_teacher` for what `teacher_target` accepts).
        teacher_checkpoint: instead of `teacher`, a file for `load_teacher`: an official BEATs checkpoint
            or the `.ckpt` of an ssl_lightning method (`runs/beats/iter1/checkpoints/last.ckpt`).
        teacher_target: "features" (last-layer outputs; iterations 2, 3) or "logits" (per-patch
            classification logits of a fine-tuned teacher; iteration 3+).
        target_dim: width C of the teacher outputs, which the estimator predicts; taken from the teacher
            (None), needed only to restore a trained module without its teacher.
        estimator_layers: Transformer layers of the estimator (the paper: 3).
        optim: optimizer and schedule.
        compile: `torch.compile` the tokenizer encoder, the estimator and the teacher (in place).
    """

    frozen_modules = ("teacher",)

    def __init__(
        self,
        tokenizer: SelfDistilledTokenizer | SelfDistilledTokenizerConfig,
        teacher: nn.Module | None = None,
        teacher_checkpoint: str | None = None,
        teacher_target: TeacherTarget = "features",
        target_dim: int | None = None,
        estimator_layers: int = 3,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        if isinstance(tokenizer, SelfDistilledTokenizerConfig):
            tokenizer = SelfDistilledTokenizer(tokenizer)
        if not isinstance(tokenizer, SelfDistilledTokenizer):
            raise TypeError(
                f"tokenizer must be a SelfDistilledTokenizer or its config, got {type(tokenizer).__name__}"
            )
        super().__init__(tokenizer.encoder, optim, compile)
        self.save_hyperparameters(ignore=["teacher"])
        if teacher is not None and teacher_checkpoint is not None:
            raise ValueError(
                "give SelfDistilledTokenizerTraining one teacher: `teacher` (a module) or "
                f"`teacher_checkpoint` (a path), not both (teacher_checkpoint={teacher_checkpoint!r})"
            )
        if teacher is None and teacher_checkpoint is None and target_dim is None:
            raise ValueError(
                "SelfDistilledTokenizerTraining needs a teacher: set `teacher_checkpoint` (e.g. "
                "runs/beats/iter1/checkpoints/last.ckpt) or `teacher` (a module)"
            )
        if teacher_target not in TEACHER_TARGETS:
            raise ValueError(f"teacher_target must be one of {TEACHER_TARGETS}, got {teacher_target!r}")
        if not isinstance(estimator_layers, int) or estimator_layers < 1:
            raise ValueError(f"estimator_layers must be a positive int, got {estimator_layers!r}")
        self.tokenizer = tokenizer
        self.teacher: nn.Module | None = None
        self.estimator: TokenizerEstimator | None = None
        if target_dim is not None:
            self.estimator = TokenizerEstimator(tokenizer.config, estimator_layers, target_dim)
        if teacher is not None:
            self.attach_teacher(teacher)

    def attach_teacher(self, teacher: nn.Module) -> None:
        """Use `teacher` (adapted by `as_teacher`, frozen, eval mode); builds the estimator for its width."""
        teacher = as_teacher(teacher, self.hparams.teacher_target).requires_grad_(False).eval()
        if self.estimator is None:
            self.estimator = TokenizerEstimator(
                self.tokenizer.config, self.hparams.estimator_layers, teacher.embed_dim
            )
        if self.estimator.target_dim != teacher.embed_dim:
            raise ValueError(
                f"the teacher gives {teacher.embed_dim}-d targets but the estimator predicts "
                f"target_dim={self.estimator.target_dim}; use the teacher this module was trained with"
            )
        self.teacher = teacher
        self.hparams.target_dim = teacher.embed_dim

    def setup(self, stage: str) -> None:
        """Load the teacher from `teacher_checkpoint` before fitting or validating (once)."""
        if stage not in ("fit", "validate") or self.teacher is not None:
            return
        if self.hparams.teacher_checkpoint is None:
            raise ValueError(
                "no teacher to distil from: set model.teacher_checkpoint (e.g. "
                "runs/beats/iter1/checkpoints/last.ckpt) or model.teacher"
            )
        self.attach_teacher(load_teacher(self.hparams.teacher_checkpoint, self.hparams.teacher_target))

    def configure_model(self) -> None:
        if self.compile:
            for module in (self.tokenizer.encoder, self.estimator, self.teacher):
                module.compile()

    def forward(self, batch: dict[str, Tensor]) -> DistillationOutput:
        """Teacher targets, tokenizer encoder, quantizer (k-means init and EMA step in training mode),
        estimator, eq. 3."""
        if self.teacher is None:
            raise RuntimeError(
                "no teacher attached: fit/validate with a Trainer (which loads teacher_checkpoint) or call "
                "attach_teacher(module) first"
            )
        audio, padding_mask = batch["audio"], batch.get("padding_mask")
        with torch.no_grad():
            target, _ = self.teacher(audio, padding_mask)
        encoded, patch_padding = self.tokenizer.encode(audio, padding_mask)
        if target.shape[:2] != encoded.shape[:2]:
            raise ValueError(
                f"the teacher gives {tuple(target.shape[:2])} (batch, patches) but the tokenizer "
                f"{tuple(encoded.shape[:2])}; teacher and tokenizer must use the same patch size and fbank"
            )
        valid = None if patch_padding is None else ~patch_padding
        quantized, _, indices = self.tokenizer.quantize(encoded, valid)
        prediction = self.estimator(quantized, patch_padding)
        codewords = quantized.detach()  # the selected codewords, from the codebook before the EMA step
        return DistillationOutput(
            self_distillation_loss(prediction, target, encoded, codewords, valid), indices, valid
        )

    def _log_terms(self, stage: str, output: DistillationOutput, batch_size: int) -> None:
        weights = None if output.valid is None else output.valid.flatten().float()
        counts = torch.bincount(
            output.indices.flatten(), weights=weights, minlength=self.tokenizer.quantize.num_codes
        )
        used, perplexity = codebook_usage(counts.float())
        losses = output.losses
        values = {
            "loss": losses.loss,
            "cosine": losses.cosine,
            "codebook": losses.codebook,
            "commitment": losses.commitment,
            "codes_used": used.float(),
            "perplexity": perplexity,
        }
        sync = stage == "val"
        for name, value in values.items():
            self.log(f"{stage}/{name}", value, prog_bar=name == "loss", batch_size=batch_size, sync_dist=sync)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        output = self(batch)
        self._log_terms("train", output, batch["audio"].shape[0])
        return output.losses.loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """Eq. 3 terms and codebook usage on a batch (eval mode: no codebook update). Lightning's sanity
        check runs before the first training batch, whose k-means initialises the codebook: a fresh
        codebook skips it."""
        if self.trainer.sanity_checking and not self.tokenizer.quantize.embedding.is_initialized:
            return
        self._log_terms("val", self(batch), batch["audio"].shape[0])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Drop the teacher's weights from the state dict and store its fingerprint."""
        super().on_save_checkpoint(checkpoint)
        checkpoint["state_dict"] = {
            key: value
            for key, value in checkpoint["state_dict"].items()
            if not key.startswith(_TEACHER_PREFIX)
        }
        if self.teacher is not None:
            checkpoint[_FINGERPRINT_KEY] = teacher_fingerprint(self.teacher)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Put the attached teacher's weights into the state dict, after checking (when the checkpoint
        has a fingerprint) that it is the teacher the checkpoint was trained with."""
        if self.teacher is None:
            return
        stored = checkpoint.get(_FINGERPRINT_KEY)
        if stored is not None and not torch.allclose(stored, teacher_fingerprint(self.teacher), rtol=1e-5):
            raise ValueError(
                "this run's teacher differs from the one the checkpoint was trained with; resume with the "
                "same teacher / teacher_checkpoint as the original run"
            )
        teacher_state = {_TEACHER_PREFIX + key: value for key, value in self.teacher.state_dict().items()}
        checkpoint["state_dict"] = {**checkpoint["state_dict"], **teacher_state}
