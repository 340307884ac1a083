"""BERT-style token masking with spans (fairseq `MaskTokensDataset`, `mask_multiple_length`): data2vec text.

Batched over the rows, every draw from one `torch.Generator`, so a resumed run redraws the same masks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ssl_lightning.nn.span_masking import random_subset, span_cover, uniform


def token_mask(
    input_ids: Tensor,
    mask_token_id: int,
    vocab_size: int,
    mask_prob: float = 0.15,
    mask_length: int = 1,
    random_token_prob: float = 0.1,
    leave_unmasked_prob: float = 0.1,
    special_ids: Sequence[int] = (),
    padding_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Choose the tokens to predict and corrupt them as fairseq's `MaskTokensDataset` does.

    Per row with `sz` maskable tokens (not in `special_ids`, not padded): `int(mask_prob * sz / mask_length
    + U[0, 1))` span starts drawn without replacement among them, each selecting `mask_length` consecutive
    positions (clipped at the end; special and padded positions inside a span stay unselected). Of the
    selected positions, a share `random_token_prob` gets a token drawn uniformly from the vocabulary minus
    `special_ids` and `mask_token_id`, a share `leave_unmasked_prob` stays unchanged, the rest becomes
    `mask_token_id` (each position decides independently, as fairseq does).

    Differences from fairseq, where items carry no padding: fairseq can also select `<s>`/`</s>` and draws
    random tokens from the whole vocabulary after its first 4 specials (`<mask>` included). data2vec 1.0
    text computes its loss only where the corrupted input is `<mask>` (`masked_ids == mask_token_id`),
    which equals `mask` when both replacement shares are 0. Settings: the paper's BERT masking is 0.15 with
    80/10/10; the official data2vec text config uses mask_prob 0.35, mask_length 4, random 0, leave 0.

    Args:
        input_ids: int64 `[B, L]`.
        padding_mask: optional bool `[B, L]`, True where padded.
    Returns:
        `masked_ids` int64 `[B, L]` (the corrupted input) and `mask` bool `[B, L]`: every selected position
        (the positions to predict, whether replaced, randomised or left unchanged).
    """
    if input_ids.dim() != 2 or input_ids.dtype != torch.long:
        raise ValueError(f"input_ids must be int64 [B, L], got {input_ids.dtype} {tuple(input_ids.shape)}")
    if not 0.0 < mask_prob < 1.0 or mask_length < 1:
        raise ValueError(f"need 0 < mask_prob < 1 and mask_length >= 1, got {mask_prob!r}, {mask_length}")
    if not (
        0.0 <= random_token_prob
        and 0.0 <= leave_unmasked_prob
        and random_token_prob + leave_unmasked_prob <= 1
    ):
        raise ValueError(
            "random_token_prob and leave_unmasked_prob must be >= 0 with a sum <= 1, got "
            f"{random_token_prob!r} and {leave_unmasked_prob!r}"
        )
    if not 0 <= mask_token_id < vocab_size:
        raise ValueError(f"mask_token_id={mask_token_id} is outside the vocabulary [0, {vocab_size})")
    if padding_mask is not None and (
        padding_mask.shape != input_ids.shape or padding_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"padding_mask must be a bool tensor of input_ids' shape {tuple(input_ids.shape)}; got "
            f"{padding_mask.dtype} {tuple(padding_mask.shape)}"
        )
    device = input_ids.device
    batch, length = input_ids.shape
    specials = torch.tensor(sorted(set(special_ids)), dtype=torch.long, device=device)
    maskable = ~torch.isin(input_ids, specials)
    if padding_mask is not None:
        maskable &= ~padding_mask
    sizes = maskable.sum(dim=1).double()
    num_spans = (mask_prob * sizes / float(mask_length) + uniform((batch,), generator, device)).floor().long()
    mask = span_cover(random_subset(maskable, num_spans, generator), mask_length) & maskable

    u = uniform((2, batch, length), generator, device)
    rand_or_unmask_prob = random_token_prob + leave_unmasked_prob
    rand_or_unmask = mask & (u[0] < rand_or_unmask_prob)
    unmask_share = leave_unmasked_prob / rand_or_unmask_prob if rand_or_unmask_prob > 0 else 0.0
    unmask = rand_or_unmask & (u[1] < unmask_share)
    randomise = rand_or_unmask & ~unmask

    masked_ids = torch.where(mask & ~unmask, mask_token_id, input_ids)
    if random_token_prob > 0:
        masked_ids = torch.where(
            randomise,
            _random_tokens(vocab_size, specials, mask_token_id, (batch, length), generator),
            masked_ids,
        )
    return masked_ids, mask


def _random_tokens(
    vocab_size: int,
    specials: Tensor,
    mask_token_id: int,
    shape: tuple[int, int],
    generator: torch.Generator | None,
) -> Tensor:
    """Ids `[shape]` on `specials`' device, uniform over the vocabulary but `specials` and `mask_token_id`."""
    allowed = torch.ones(vocab_size, dtype=torch.bool, device=specials.device)
    allowed[specials[(specials >= 0) & (specials < vocab_size)]] = False
    allowed[mask_token_id] = False
    allowed_ids = allowed.nonzero().squeeze(1)
    if allowed_ids.numel() == 0:
        raise ValueError(
            f"random_token_prob > 0 needs a non-special token, but all {vocab_size} ids are special"
        )
    pick = uniform(shape, generator, specials.device) * allowed_ids.numel()
    return allowed_ids[pick.long().clamp_max(allowed_ids.numel() - 1)]
