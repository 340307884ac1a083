"""Contrastive Quant's objectives (CQ-A, CQ-B, CQ-C, CQ-quant) composed from a pairwise base loss.

Notation of the paper (eqs. 4-8): x is an instance, Aug1 / Aug2 two random augmentations, q1 / q2
two precisions drawn per iteration from the precision set, F_q the encoder (+ heads) with weights
and input activations fake-quantized at q bits:

    f1 = F_q1(Aug1(x)),  f2 = F_q2(Aug1(x)),  f1+ = F_q1(Aug2(x)),  f2+ = F_q2(Aug2(x))

    CQ-A (eq. 4):  NCE(f1, f2+) = NCE(F_q1(Aug1(x)), F_q2(Aug2(x)))         2 quantized forwards
    CQ-B (eq. 7):  NCE(f1, f1+) + NCE(f2, f2+)                             4 quantized forwards
    CQ-C (eq. 8):  NCE(f1, f1+) + NCE(f2, f2+) + NCE(f1, f2) + NCE(f1+, f2+)   the same 4 forwards
    CQ-quant (sec. 4.5): NCE(F_q1(x), F_q2(x)), one input without augmentation   2 quantized forwards

No objective contrasts a full-precision forward: full precision is only used to evaluate (and to
fine-tune "FP"). `embed_branches` batches the forwards of one precision: CQ-A runs the network
twice on B samples, CQ-B / CQ-C twice on 2B. NCE is the base loss: NT-Xent for SimCLR, BYOL's
regression loss for BYOL (then each branch carries the online prediction and the target
projection, see `byol_pair_loss`; whether the target network is quantized too is not stated in the
paper and is left to the method). The terms are summed as in the equations (`reduction="sum"`) or
averaged (`"mean"`; the text calls CQ-B's objective "averaged over two randomly selected precisions").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple

import torch
from einops import rearrange
from torch import Tensor, nn

from ssl_lightning.nn.losses.byol import symmetric_byol_loss
from ssl_lightning.nn.quantized_model import precision


class Branch(NamedTuple):
    """One forward pass: input `view` (0: x, 1: Aug1(x), 2: Aug2(x)) at precision `q` (1: q1, 2: q2)."""

    view: int
    q: int

    @property
    def name(self) -> str:
        """The paper's name: f1, f2, f1+, f2+ (views 1 and 2), x@q1, x@q2 (view 0)."""
        if self.view == 0:
            return f"x@q{self.q}"
        return f"f{self.q}{'+' if self.view == 2 else ''}"


F1, F2, F1_PLUS, F2_PLUS = Branch(1, 1), Branch(1, 2), Branch(2, 1), Branch(2, 2)

Objective = Literal["cq_a", "cq_b", "cq_c", "cq_quant"]
OBJECTIVES: dict[str, tuple[tuple[Branch, Branch], ...]] = {
    "cq_a": ((F1, F2_PLUS),),
    "cq_b": ((F1, F1_PLUS), (F2, F2_PLUS)),
    "cq_c": ((F1, F1_PLUS), (F2, F2_PLUS), (F1, F2), (F1_PLUS, F2_PLUS)),
    "cq_quant": ((Branch(0, 1), Branch(0, 2)),),
}


def byol_pair_loss(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor]) -> Tensor:
    """BYOL's symmetric loss of two branches, each `(online prediction p, target projection z)`, `[B, D]`.

    `byol_loss(p_a, z_b) + byol_loss(p_b, z_a)` (targets detached): both branches go through the
    online and the target network, as the paper's BYOL adaptation does. In [0, 8].
    """
    return symmetric_byol_loss(a[0], b[0], a[1], b[1])


class ContrastiveQuantLoss(nn.Module):
    """One Contrastive Quant objective: the sum (or mean) of `base_loss` over its pairs of branches.

    `forward(embeddings)` takes a mapping `Branch -> output of that forward pass` holding at least
    `self.branches` (a `[B, D]` embedding for NT-Xent; a `(p, z)` pair for `byol_pair_loss`; extra
    branches are ignored) and returns a scalar. `terms` gives each term by name for logging.

    Args:
        base_loss: the pairwise loss NCE(a, b), e.g. `NTXentLoss(0.2)` or `byol_pair_loss`.
        objective: "cq_a" (eq. 4), "cq_b" (eq. 7), "cq_c" (eq. 8) or "cq_quant" (sec. 4.5).
        reduction: "sum" of the terms, as in the equations, or their "mean".
    """

    def __init__(
        self,
        base_loss: Callable[[object, object], Tensor],
        objective: Objective = "cq_c",
        reduction: Literal["sum", "mean"] = "sum",
    ) -> None:
        super().__init__()
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {objective!r}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
        self.base_loss = base_loss
        self.objective = objective
        self.reduction = reduction
        self.pairs = OBJECTIVES[objective]
        self.branches: tuple[Branch, ...] = tuple(dict.fromkeys(b for pair in self.pairs for b in pair))

    def terms(self, embeddings: Mapping[Branch, object]) -> dict[str, Tensor]:
        """Each term of the objective, named like `NCE(f1,f1+)`, in the order of the equation."""
        missing = [branch.name for branch in self.branches if branch not in embeddings]
        if missing:
            raise ValueError(
                f"{self.objective} needs the branches {[b.name for b in self.branches]}; missing {missing} "
                f"(got {[getattr(b, 'name', b) for b in embeddings]})"
            )
        return {
            f"NCE({a.name},{b.name})": self.base_loss(embeddings[a], embeddings[b]) for a, b in self.pairs
        }

    def forward(self, embeddings: Mapping[Branch, object]) -> Tensor:
        """The objective: its `terms` (each the base loss of two branches' outputs) summed or averaged
        (`reduction`) into a scalar; `embeddings` maps every branch of the objective to its output."""
        terms = torch.stack(list(self.terms(embeddings).values()))
        return terms.mean() if self.reduction == "mean" else terms.sum()

    def extra_repr(self) -> str:
        return f"objective={self.objective}, reduction={self.reduction}"


def embed_branches(
    model: nn.Module,
    views: Mapping[int, Tensor],
    precisions: Mapping[int, int | None],
    branches: Sequence[Branch],
) -> dict[Branch, Tensor]:
    """Run the quantized `model` once per precision on all the views it needs there; split per branch.

    `views[v]`: input of view v (`[B, ...]` each, same B); `precisions[q]`: bits of q (e.g.
    `{1: 6, 2: 13}` from `PrecisionSampler.sample_pair()`). The views of one precision are
    concatenated into one `[k * B, ...]` batch, so BatchNorm statistics and the per-tensor activation
    ranges are those of the k views together (as SimCLR's concatenated forward). Returns
    `{branch: model output [B, ...]}`. CQ-A: 2 forwards of B; CQ-B / CQ-C: 2 forwards of 2B.
    """
    by_precision: dict[int, list[Branch]] = {}
    for branch in branches:
        if branch.view not in views or branch.q not in precisions:
            raise ValueError(
                f"branch {branch.name} needs view {branch.view} and precision q{branch.q}; got views "
                f"{sorted(views)} and precisions {sorted(precisions)}"
            )
        by_precision.setdefault(branch.q, []).append(branch)
    outputs: dict[Branch, Tensor] = {}
    for q, group in by_precision.items():
        batch = torch.cat([views[branch.view] for branch in group])
        with precision(model, precisions[q]):
            output = model(batch)
        chunks = rearrange(output, "(k b) ... -> k b ...", k=len(group))
        outputs.update(zip(group, chunks, strict=True))
    return outputs
