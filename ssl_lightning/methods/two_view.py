"""The two-view framework of SimCLR and BYOL, with Contrastive Quant (CQ) as an option on both.

A *view maker* (`views`) is an `nn.Module` with a class attribute `domain` and
`forward(x, generator=None) -> one random view`:

    domain         input of a batch                               view          encoded by
    "image"        batch["image"] [B, C, H, W]                    [B, C, H, W]  encoder(view, None)
    "waveform"     batch["audio"] [B, T]                          [B, T']       encoder(view, None)
    "spectrogram"  encoder.spectrogram(batch["audio"]) [B, F, M]  [B, F', M]    encoder.encode_spectrogram

(F frames, M mel bins). The encoder's features `[N, L, D]` are pooled by `SSLMethod.pool` (pools
are parameter-free). A step draws two views of every input; where both go through the network at
the same precision they go in one batched pass (`[2B, ...]`), so a view maker must give views of
one shape for one input shape; `padding_mask` is not used for views (two-view training takes
fixed-length clips). `embed(batch)` stays the plain encoder embedding of the
un-augmented batch (`SSLMethod`), the representation the evaluations use.

Subclasses define `forward(views[N, ...]) -> branch output[N, ...]` (one branch of the training
network: SimCLR's projection, BYOL's stacked online prediction and target projection) and
`pair_loss(a, b) -> scalar` (NT-Xent, BYOL's symmetric loss).

Contrastive Quant (`quant=ContrastiveQuantConfig(...)`): the encoder's `nn.Conv2d` / `nn.Linear`
are swapped once for fake-quantized layers sharing their parameters (`quantize_model`; an encoder
that has quant layers already, such as one restored from a checkpoint's hyper-parameters, is kept
as it is). The paper quantizes the encoder F (eqs. 3-9); the heads stay full precision unless
`quantize_heads` (the CPT code it builds on keeps its final FC full precision). Every training
step draws two precisions q1, q2 uniformly from the precision set (e.g. "6-16": every integer
6..16), runs the branches of the objective (`ContrastiveQuantLoss`: CQ-A eq. 4, CQ-B eq. 7, CQ-C
eq. 8, CQ-quant sec. 4.5) with the views of one precision batched (`embed_branches`), and sums
the pairwise losses. The draws of step k are a function of (`seed`, k) alone: identical on every
DDP rank, and a resumed run draws what the uninterrupted one would have (micro-batches of one
accumulated step share them). The quantized layers start and stay at full precision outside
those branches, so the validation loss (the plain two-view loss of seeded views) and `embed` run
at full precision; to embed at b bits, call
`ssl_lightning.nn.quantized_model.set_precision(method.encoder, b)` first. With `compile=True`,
torch.compile traces one graph per precision (the layers' bits are module attributes): set
`torch._dynamo.config.recompile_limit` (default 8) above the size of the set plus one, or it falls
back to eager for the rest.

DDP: gradients are averaged, so the parameters (and BYOL's EMA target) stay identical on every
rank. BatchNorm in the encoder or the heads normalises with the statistics of the local batch
only: to train exactly as one process on the global batch, run the `Trainer` with
`sync_batchnorm=True` (recommended for BYOL and SimCLR, whose heads use BatchNorm1d; PyTorch's
SyncBatchNorm needs GPUs, so CPU DDP runs keep per-rank statistics).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ssl_lightning.augment.image_views import ImageViews
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.nn.losses.contrastive_quant import (
    OBJECTIVES,
    ContrastiveQuantLoss,
    Objective,
    embed_branches,
)
from ssl_lightning.nn.optim import OptimizerConfig
from ssl_lightning.nn.quantization import PrecisionSampler, QuantizerConfig
from ssl_lightning.nn.quantized_model import quant_layers, quantize_model

DOMAINS = ("image", "waveform", "spectrogram")
INPUT_KEYS = {"image": ("image", 4, "[B, C, H, W]"), "waveform": ("audio", 2, "[B, T]")}
INPUT_KEYS["spectrogram"] = INPUT_KEYS["waveform"]
SPECTROGRAM_METHODS = ("spectrogram", "encode_spectrogram")


@dataclass
class ContrastiveQuantConfig:
    """Contrastive Quant on a two-view method (the `quant:` block of a recipe).

    Args:
        objective: "cq_a" (eq. 4), "cq_b" (eq. 7), "cq_c" (eq. 8, the paper's choice on CIFAR-100)
            or "cq_quant" (sec. 4.5: the un-augmented input at q1 and q2).
        precision_set: bits q1, q2 are drawn from, as in the paper: "4-16", "6-16" (its default)
            or "8-16".
        reduction: "sum" of the objective's terms (as in the equations) or their "mean".
        distinct: draw q1 != q2 (the paper draws two precisions; equal draws are not excluded).
        seed: the precisions of step k are drawn from a generator seeded with `seed + k`.
        quantize_heads: also quantize the projector (and BYOL's predictor).
        quantize_target: BYOL only: run the target network at the branch's precision too (the
            paper does not say; False keeps the target full precision).
        skip_first: keep the encoder's first conv/linear layer full precision (CPT's ImageNet ResNets).
        quantizer: how layers quantize (default: CPT's min/max zero-point grid, round to nearest;
            eq. 9 as printed is `QuantizerConfig(rounding="floor", zero_point=False)`).
    """

    objective: Objective = "cq_c"
    precision_set: str = "6-16"
    reduction: Literal["sum", "mean"] = "sum"
    distinct: bool = False
    seed: int = 0
    quantize_heads: bool = False
    quantize_target: bool = False
    skip_first: bool = False
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"quant.objective must be one of {sorted(OBJECTIVES)}, got {self.objective!r}")
        PrecisionSampler.from_set(self.precision_set, distinct=self.distinct)

    def precisions_at(self, step: int) -> tuple[int, int]:
        """(q1, q2) of training step `step`, drawn uniformly from the precision set."""
        return PrecisionSampler.from_set(
            self.precision_set, seed=self.seed + step, distinct=self.distinct
        ).sample_pair()


def projection_mlp(in_dim: int, hidden_dim: int, out_dim: int, hidden_layers: int = 1) -> nn.Sequential:
    """`hidden_layers` x (Linear, BatchNorm1d, ReLU), then Linear: `[N, in_dim] -> [N, out_dim]`.

    One hidden layer is SimCLR's and BYOL's projector (and BYOL's predictor); HARES's SimCLR uses
    three hidden layers of 4096.
    """
    if hidden_layers < 0:
        raise ValueError(f"projector_hidden_layers must be >= 0, got {hidden_layers}")
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        width = hidden_dim
    return nn.Sequential(*layers, nn.Linear(width, out_dim))


def view_domain(views: nn.Module, encoder: nn.Module) -> str:
    """The domain of a view maker, checked against the encoder (spectrogram views need its two methods)."""
    domain = getattr(views, "domain", None)
    if not isinstance(views, nn.Module) or domain not in DOMAINS:
        raise ValueError(
            f"views must be a view maker: an nn.Module with a class attribute domain in {DOMAINS}; "
            f"got {type(views).__name__} with domain {domain!r}"
        )
    missing = [name for name in SPECTROGRAM_METHODS if not callable(getattr(encoder, name, None))]
    if domain == "spectrogram" and missing:
        raise ValueError(
            f"{type(views).__name__} makes spectrogram views, but the encoder {type(encoder).__name__} lacks "
            f"{missing}: spectrogram(waveform[B, T]) -> [B, frames, mels] and encode_spectrogram(spec) -> "
            "(features[B, N, D], None). Use an encoder that has both, or a waveform view maker."
        )
    return domain


class TwoViewMethod(SSLMethod):
    """Base of the two-view methods: inputs and encoding by view domain, the batched two-view loss, CQ.

    A subclass builds its heads (then calls `quantize_heads`), calls `save_hyperparameters()`, and
    defines `forward` and `pair_loss`.

    Args:
        encoder: backbone following the encoder contract (image or audio).
        views: the view maker (default `ImageViews()`).
        quant: Contrastive Quant settings (None: the plain method).
        optim: optimizer and schedule.
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self,
        encoder: nn.Module,
        views: nn.Module | None = None,
        quant: ContrastiveQuantConfig | None = None,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.views = ImageViews() if views is None else views
        self.domain = view_domain(self.views, encoder)
        self.quant = quant
        self.cq_loss: ContrastiveQuantLoss | None = None
        if quant is not None:
            if not quant_layers(encoder):
                self.encoder = quantize_model(encoder, skip_first=quant.skip_first, config=quant.quantizer)
            self.cq_loss = ContrastiveQuantLoss(self.pair_loss, quant.objective, quant.reduction)

    def forward(self, views: Tensor) -> Tensor:
        """One branch of the training network: views `[N, ...]` -> branch output `[N, ...]`."""
        raise NotImplementedError(f"{type(self).__name__} must define forward(views)")

    def pair_loss(self, a: Tensor, b: Tensor) -> Tensor:
        """The loss of two branches' outputs (row i of both from sample i) -> scalar."""
        raise NotImplementedError(f"{type(self).__name__} must define pair_loss(a, b)")

    def quantize_heads(self, *heads: nn.Module) -> None:
        """Quantize the heads in place when CQ is on with `quantize_heads` (call once, in `__init__`)."""
        if self.quant is not None and self.quant.quantize_heads:
            for head in heads:
                quantize_model(head, config=self.quant.quantizer)

    def inputs(self, batch: dict[str, Tensor]) -> Tensor:
        """The view maker's input: images `[B, C, H, W]`, waveforms `[B, T]` or spectrograms `[B, F, M]`."""
        key, dims, shape = INPUT_KEYS[self.domain]
        x = batch.get(key)
        if x is None or x.dim() != dims:
            found = f"no {key!r} (keys: {sorted(batch)})" if x is None else f"shape {tuple(x.shape)}"
            raise ValueError(
                f"{type(self).__name__} with {type(self.views).__name__} ({self.domain} views) needs batches "
                f"with {key!r} {shape}; got {found}"
            )
        return self.encoder.spectrogram(x) if self.domain == "spectrogram" else x

    def encode_view(self, views: Tensor, encoder: nn.Module | None = None) -> Tensor:
        """Pooled features `[N, D]` of views `[N, ...]` by `encoder` (default: the online encoder)."""
        encoder = self.encoder if encoder is None else encoder
        if self.domain == "spectrogram":
            return self.pool(*encoder.encode_spectrogram(views))
        return self.pool(*encoder(views, None))

    def two_view_loss(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The plain method's loss on two views of every input `x[B, ...]`, both in one network pass."""
        views = torch.cat([self.views(x, generator), self.views(x, generator)])
        a, b = self(views).chunk(2)
        return self.pair_loss(a, b)

    def contrastive_quant_loss(self, x: Tensor, q1: int, q2: int) -> Tensor:
        """The CQ objective on inputs `x[B, ...]`: views 1 and 2 drawn as needed (view 0 is x itself),
        one network pass per precision, terms combined by `ContrastiveQuantLoss`."""
        if self.cq_loss is None:
            raise RuntimeError(f"{type(self).__name__} was built without quant=ContrastiveQuantConfig(...)")
        needed = sorted({branch.view for branch in self.cq_loss.branches})
        views = {view: x if view == 0 else self.views(x) for view in needed}
        return self.cq_loss(embed_branches(self, views, {1: q1, 2: q2}, self.cq_loss.branches))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        x = self.inputs(batch)
        if self.quant is None:
            loss = self.two_view_loss(x)
        else:
            q1, q2 = self.quant.precisions_at(self.global_step)
            loss = self.contrastive_quant_loss(x, q1, q2)
            self.log_dict({"train/q1": float(q1), "train/q2": float(q2)}, batch_size=x.shape[0])
        self.log("train/loss", loss, prog_bar=True, batch_size=x.shape[0])
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """The plain two-view loss at full precision on views drawn with a generator seeded by
        `batch_idx` (the same views every epoch; RQ is off in eval mode)."""
        x = self.inputs(batch)
        loss = self.two_view_loss(x, torch.Generator().manual_seed(batch_idx))
        self.log("val/loss", loss, prog_bar=True, batch_size=x.shape[0], sync_dist=True)
