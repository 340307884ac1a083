"""The DABS objectives on `DabsTransformer` (Tamkin et al., 2021; `alextamkin/dabs` at 7ee9a71,
`src/systems/{emix,shed,base_system}.py`) and Randomized Quantization on frozen token embeddings (Wu et al.,
2023, section 5.4).

All of them work on the token embeddings `embed_inputs(batch) [B, N, D]` before the Transformer:
- `EMix`: i-Mix on the embeddings; a contrastive loss between mixed and clean examples.
- `ShED`: shuffled-embedding detection, a per-token binary classification.
- `EmbeddingRQ`: two Randomized-Quantization views of the embeddings of a frozen, randomly initialised
  embedding module, contrasted as e-Mix contrasts (the paper: "the training protocol follows e-Mix").
The contrastive methods project the pooled feature (mean over all tokens, CLS included) with DABS's head
LayerNorm -> Linear(D -> `encoder.out_dim`); `embed(batch)` is the pooled feature `[B, D]` without it.

Optimisation defaults to the official `optim.name: adam`, which `base_system.py` builds as AdamW, lr 1e-4,
weight decay 1e-4, no schedule (the library's cosine with `min_lr_ratio=1` is constant). One difference:
the library's optimizer factory exempts biases and norm weights from weight decay; the official AdamW
decays every parameter.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssl_lightning.augment.randomized_quantization import RandomizedQuantization
from ssl_lightning.backbones.dabs import DabsTransformer
from ssl_lightning.methods.base import SSLMethod
from ssl_lightning.nn.optim import OptimizerConfig

Reduction = Literal["dabs", "imix"]

SHUFFLE_FRACTION = 0.15
"""ShED's share of token positions shuffled per example (official `FRAC_TO_PERMUTE`)."""


def dabs_optim() -> OptimizerConfig:
    """The official pre-training optimizer: AdamW, lr 1e-4, weight decay 1e-4, constant learning rate."""
    return OptimizerConfig(name="adamw", lr=1e-4, weight_decay=1e-4, min_lr_ratio=1.0)


def contrastive_logits(queries: Tensor, keys: Tensor, temperature: float) -> Tensor:
    """Cosine similarities `[B, B]` of `queries[B, E]` (rows) and `keys[B, E]` (columns) / `temperature`."""
    return F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature


def accuracy(logits: Tensor) -> Tensor:
    """Share of rows of `logits[B, B]` whose largest entry is on the diagonal."""
    return (logits.argmax(dim=1) == torch.arange(logits.shape[0], device=logits.device)).float().mean()


def emix_loss(logits: Tensor, lam: Tensor, partner: Tensor, reduction: Reduction = "dabs") -> Tensor:
    """e-Mix's loss of `logits[B, B]` (mixed examples x clean examples) with mixing weights `lam[B]` and
    partners `partner[B]` (mixed example i = lam_i own + (1 - lam_i) partner_i).

    With `a_i = CE(logits_i, i)` and `b_i = CE(logits_i, partner_i)`:
    - "dabs" (as implemented in `emix.py`, whose `lam` of shape [B, 1, 1] broadcasts against the
      per-example CE [B] to a [B, 1, B] tensor before `.mean()`): mean(lam) mean(a) + mean(1 - lam) mean(b);
    - "imix" (i-Mix's per-example weighting): mean over i of lam_i a_i + (1 - lam_i) b_i.
    """
    own = F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device), reduction="none")
    mixed_in = F.cross_entropy(logits, partner, reduction="none")
    if reduction == "dabs":
        return lam.mean() * own.mean() + (1 - lam).mean() * mixed_in.mean()
    if reduction == "imix":
        return (lam * own + (1 - lam) * mixed_in).mean()
    raise ValueError(f"reduction must be 'dabs' or 'imix', got {reduction!r}")


def shuffle_count(num_tokens: int, fraction: float = SHUFFLE_FRACTION) -> int:
    """Token positions ShED shuffles per example: ceil(fraction * N), as the official code; at least 2, or
    a chosen token could not move (the official roll of one token leaves it in place, labelled shuffled)."""
    count = math.ceil(num_tokens * fraction)
    if count < 2:
        raise ValueError(
            f"ShED shuffles ceil({fraction} * N) = {count} token(s) of N = {num_tokens}; at least 2 must be "
            f"chosen for every chosen token to move. Use inputs of more tokens or a larger fraction"
        )
    return count


def shuffle_embeddings(
    embeddings: Tensor, fraction: float = SHUFFLE_FRACTION, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """ShED's corruption of `embeddings[B, N, D]` -> `(shuffled[B, N, D], is_shuffled[B, N] int64)`.

    As the official `permute_embeddings`: per example, the top-k positions of uniform noise (k =
    `shuffle_count(N)`, in the noise's random order) are chosen, and the embedding at the j-th chosen
    position moves to the (j + 1)-th (cyclically), so every chosen token moves (one cycle, not every
    derangement).
    """
    batch, num_tokens, dim = embeddings.shape
    count = shuffle_count(num_tokens, fraction)
    device = generator.device if generator is not None else embeddings.device
    noise = torch.rand(batch, num_tokens, generator=generator, device=device)
    chosen = noise.topk(count, dim=-1).indices.to(embeddings.device)
    source = chosen.roll(1, dims=-1)
    moved = embeddings.gather(1, source.unsqueeze(-1).expand(-1, -1, dim))
    shuffled = embeddings.scatter(1, chosen.unsqueeze(-1).expand(-1, -1, dim), moved)
    is_shuffled = torch.zeros(batch, num_tokens, dtype=torch.long, device=embeddings.device)
    return shuffled, is_shuffled.scatter(1, chosen, 1)


def shed_loss(token_logits: Tensor, is_shuffled: Tensor) -> tuple[Tensor, Tensor]:
    """`(loss, accuracy)` of shuffled-vs-not predictions `token_logits[B, N + 1, 2]` (CLS first, excluded)
    against `is_shuffled[B, N]`: CE and accuracy averaged over all B x N tokens."""
    logits = token_logits[:, 1:]
    loss = F.cross_entropy(logits.reshape(-1, 2), is_shuffled.reshape(-1))
    return loss, (logits.argmax(dim=-1) == is_shuffled).float().mean()


class DabsMethod(SSLMethod):
    """A DABS objective on a `DabsTransformer`: `encode(batch)` hands the whole batch dict to the encoder,
    training and validation log the objective's loss and accuracy.

    Args:
        encoder: the domain's `DabsTransformer`.
        optim: optimizer and schedule (default `dabs_optim()`: AdamW 1e-4, weight decay 1e-4, constant).
        compile: `torch.compile` the encoder.
    """

    def __init__(
        self, encoder: DabsTransformer, optim: OptimizerConfig | None = None, compile: bool = False
    ) -> None:
        super().__init__(encoder, optim or dabs_optim(), compile)

    def objective(self, batch: dict[str, Tensor], generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """`(loss, accuracy)` of one batch, random draws from `generator` where the method can."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, acc = self.objective(batch, self.mask_generator(self.global_step, batch_idx))
        size = batch[self.encoder.specs[0].name].shape[0]
        self.log_dict({"train/loss": loss, "train/acc": acc}, prog_bar=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, acc = self.objective(batch, self.mask_generator(-1, batch_idx))
        size = batch[self.encoder.specs[0].name].shape[0]
        self.log_dict({"val/loss": loss, "val/acc": acc}, prog_bar=True, batch_size=size, sync_dist=True)


class ContrastiveDabsMethod(DabsMethod):
    """A DABS method that contrasts projections: DABS's head LayerNorm -> Linear(D -> `encoder.out_dim`) on
    the pooled feature, cosine logits over `temperature` (0.2 in DABS)."""

    def __init__(
        self,
        encoder: DabsTransformer,
        temperature: float = 0.2,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, optim, compile)
        self.temperature = temperature
        self.head = nn.Sequential(
            nn.LayerNorm(encoder.embed_dim), nn.Linear(encoder.embed_dim, encoder.out_dim)
        )

    def project(self, embeddings: Tensor) -> Tensor:
        """Token embeddings `[B, N, D]` -> head output `[B, out_dim]` (DABS's `encode(prehead=False)`)."""
        return self.head(self.encoder.pool(self.encoder.encode_embeddings(embeddings)))


class EMix(ContrastiveDabsMethod):
    """e-Mix: i-Mix on the input embeddings (`emix.py`).

    Per example, lam ~ Beta(alpha, alpha) and lam = max(lam, 1 - lam); partners are a random permutation;
    mixed = lam * own + (1 - lam) * stop_gradient(partner's) embeddings. Mixed and clean examples are
    encoded separately; logits = normalised mixed projections . clean ones^T / temperature; loss
    `emix_loss` with `reduction` ("dabs": as the official code reduces it; "imix": per example).
    lam comes from the global RNG (torch's Beta sampler takes no generator), the permutation from the
    step's generator.
    """

    def __init__(
        self,
        encoder: DabsTransformer,
        alpha: float = 1.0,
        temperature: float = 0.2,
        reduction: Reduction = "dabs",
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        if reduction not in ("dabs", "imix"):
            raise ValueError(f"reduction must be 'dabs' or 'imix', got {reduction!r}")
        super().__init__(encoder, temperature, optim, compile)
        self.save_hyperparameters()
        self.alpha = alpha
        self.reduction = reduction

    def mixing_weights(self, batch_size: int) -> Tensor:
        """lam `[B]`: Beta(alpha, alpha) draws folded into [0.5, 1]."""
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((batch_size,)).to(self.device)
        return torch.maximum(lam, 1 - lam)

    def objective(self, batch: dict[str, Tensor], generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        embeddings = self.encoder.embed_inputs(batch)
        size = embeddings.shape[0]
        lam = self.mixing_weights(size)
        device = generator.device if generator is not None else embeddings.device
        partner = torch.randperm(size, generator=generator, device=device).to(embeddings.device)
        weight = lam.view(-1, 1, 1)
        mixed = weight * embeddings + (1 - weight) * embeddings[partner].detach()
        logits = contrastive_logits(self.project(mixed), self.project(embeddings), self.temperature)
        return emix_loss(logits, lam, partner, self.reduction), accuracy(logits)


class ShED(DabsMethod):
    """Shuffled Embedding Detection (`shed.py`): `shuffle_embeddings` moves ceil(15%) of each example's
    token embeddings among themselves; a per-token Linear(D -> 2) on the encoder's tokens predicts which
    moved (CLS excluded), trained with CE (`shed_loss`). The head of the contrastive methods is unused."""

    def __init__(
        self,
        encoder: DabsTransformer,
        fraction: float = SHUFFLE_FRACTION,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        shuffle_count(encoder.num_tokens, fraction)
        super().__init__(encoder, optim, compile)
        self.save_hyperparameters()
        self.fraction = fraction
        self.predictor = nn.Linear(encoder.embed_dim, 2)

    def objective(self, batch: dict[str, Tensor], generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        shuffled, is_shuffled = shuffle_embeddings(self.encoder.embed_inputs(batch), self.fraction, generator)
        return shed_loss(self.predictor(self.encoder.encode_embeddings(shuffled)), is_shuffled)


class EmbeddingRQ(ContrastiveDabsMethod):
    """Randomized Quantization of the token embeddings (RQ paper, section 5.4), trained as e-Mix without
    mixing: two views `RandomizedQuantization(x)` of the embeddings `x[B, N, D]` (bins drawn per example and
    embedding channel, over its N tokens: `channel_dim=-1`), logits = normalised projections of view 1 .
    those of view 2^T / temperature, CE to the diagonal.

    By default the embedding modules keep their random initialisation ("we randomly initialize the token
    embedding module without updating it": requires_grad False). `straight_through=True` trains them,
    passing RQ's gradient straight through (the identity), which the paper mentions but did not use.
    In eval mode RQ is off, so validation compares two identical views.

    Args:
        encoder: the domain's `DabsTransformer`.
        num_bins: RQ bins per channel (the paper does not state DABS's; 8 is the README's image setting).
        collapse_to_val: RQ's bin representative ('inside_random', the official default, or 'middle').
        temperature: contrastive temperature (e-Mix's 0.2).
        straight_through: train the embedding modules through RQ with a straight-through gradient.
        optim, compile: as `DabsMethod`.
    """

    def __init__(
        self,
        encoder: DabsTransformer,
        num_bins: int = 8,
        collapse_to_val: Literal["inside_random", "middle"] = "inside_random",
        temperature: float = 0.2,
        straight_through: bool = False,
        optim: OptimizerConfig | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__(encoder, temperature, optim, compile)
        self.save_hyperparameters()
        self.rq = RandomizedQuantization(num_bins, collapse_to_val=collapse_to_val, channel_dim=-1)
        self.straight_through = straight_through
        if not straight_through:
            encoder.embed_modules.requires_grad_(False)

    def quantize(self, embeddings: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """One RQ view `[B, N, D]` of `embeddings[B, N, D]` (straight-through gradient when configured)."""
        quantized = self.rq(embeddings, generator)
        return embeddings + (quantized - embeddings).detach() if self.straight_through else quantized

    def objective(self, batch: dict[str, Tensor], generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        embeddings = self.encoder.embed_inputs(batch)
        views = [self.project(self.quantize(embeddings, generator)) for _ in range(2)]
        logits = contrastive_logits(*views, self.temperature)
        labels = torch.arange(logits.shape[0], device=logits.device)
        return F.cross_entropy(logits, labels), accuracy(logits)
