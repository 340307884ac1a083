"""1-D masks of data2vec: wav2vec 2.0 span masking (data2vec 1.0 audio) and block masks (data2vec 2.0 audio).

Both follow fairseq (`fairseq/data/data_utils.py`: `compute_mask_indices`, `compute_block_mask_1d`) with
every draw from one `torch.Generator` and no Python loop over the batch, so a resumed run redraws the same
masks. Masks are bool `[B, T]`, True = masked. The random helpers below are shared with the 2-D and token
masks (`block_masking.py`, `token_masking.py`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def draw_device(generator: torch.Generator | None, device: torch.device | str | None) -> torch.device:
    """Where random numbers are drawn: the generator's device (it draws only there), else `device`."""
    if generator is not None:
        return generator.device
    return torch.device(device if device is not None else "cpu")


def uniform(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str) -> Tensor:
    """float64 U[0, 1) of `shape` on `device`, drawn from `generator` (float64: exact ranks and floors)."""
    noise = torch.rand(shape, generator=generator, device=draw_device(generator, device), dtype=torch.float64)
    return noise.to(device)


def randint(
    high: int, shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str
) -> Tensor:
    """int64 uniform on {0, ..., high - 1} of `shape` on `device`, drawn from `generator`."""
    values = torch.randint(high, shape, generator=generator, device=draw_device(generator, device))
    return values.to(device)


def random_subset(candidates: Tensor, counts: Tensor | int, generator: torch.Generator | None) -> Tensor:
    """`counts[b]` positions of row b drawn uniformly without replacement among `candidates` (bool `[B, N]`).

    Returns bool `[B, N]`; a row with fewer candidates than its count gets all of them (one `[B, N]` draw).
    """
    noise = uniform(tuple(candidates.shape), generator, candidates.device).masked_fill(~candidates, 2.0)
    rank = noise.argsort(dim=1).argsort(dim=1)
    counts = torch.as_tensor(counts, device=candidates.device).reshape(-1, 1)
    return (rank < counts) & candidates


def resample_to_count(mask: Tensor, count: int, generator: torch.Generator | None) -> Tensor:
    """fairseq's `require_same_masks` step: exactly `count` True per row of `mask` (bool `[B, N]`).

    A row with more keeps a uniformly random `count` of its True positions; a row with fewer keeps all of
    them and gains uniformly random False positions until it has `count`.
    """
    priority = uniform(tuple(mask.shape), generator, mask.device) + (~mask).double()
    return priority.argsort(dim=1).argsort(dim=1) < count


def span_cover(starts: Tensor, span_length: int) -> Tensor:
    """Positions covered by spans of `span_length` from each True of `starts` (bool `[B, N]`, clipped at N).

    Position t is covered when a span starts in (t - span_length, t]: a window sum of the start indicators.
    """
    started = F.pad(starts.long().cumsum(dim=1), (span_length, 0))
    return started[:, span_length:] - started[:, :-span_length] > 0


def _check_sizes(batch: int, length: int, mask_length: int) -> None:
    if batch < 1 or length < 1:
        raise ValueError(f"need batch >= 1 and length >= 1, got batch={batch}, length={length}")
    if mask_length < 1:
        raise ValueError(f"mask_length must be >= 1, got {mask_length}")


def span_mask(
    batch: int,
    length: int,
    mask_prob: float,
    mask_length: int,
    min_masks: int = 1,
    padding_mask: Tensor | None = None,
    require_same_masks: bool = True,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """wav2vec 2.0 / data2vec 1.0 span masking (fairseq `compute_mask_indices`: static lengths, overlaps).

    Per row with `sz` valid steps (T minus its padding): `n = max(min_masks, int(mask_prob * sz / mask_length
    + U[0, 1)))` span starts drawn without replacement from `[0, sz - mask_length)` (from `[0, n + 1)` when
    that range holds no more than n), each masking `mask_length` steps (clipped at `sz`), overlaps merged.
    `require_same_masks` then unmasks random steps of every row down to the batch's smallest count
    (mask_dropout 0). data2vec 1.0 audio: `mask_prob` 0.65, `mask_length` 10, ~48% masked for long clips.

    Args:
        batch, length: B, T.
        padding_mask: optional bool `[B, T]`, True where padded; padded steps are never masked.
        generator: the random source (all draws); the global RNG when None.
        device: where the mask lives (default: the padding mask's, else the generator's, else CPU).
    Returns:
        bool `[B, T]`, True = masked.
    """
    _check_sizes(batch, length, mask_length)
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in (0, 1], got {mask_prob!r}")
    if min_masks < 0:
        raise ValueError(f"min_masks must be >= 0, got {min_masks}")
    if padding_mask is not None and (
        padding_mask.shape != (batch, length) or padding_mask.dtype != torch.bool
    ):
        raise ValueError(
            f"padding_mask must be a bool tensor [B={batch}, T={length}]; got {padding_mask.dtype} "
            f"{tuple(padding_mask.shape)}"
        )
    if device is None and padding_mask is not None:
        device = padding_mask.device
    device = torch.device(device) if device is not None else draw_device(generator, None)
    if padding_mask is None:
        sizes = torch.full((batch,), length, device=device)
    else:
        sizes = length - padding_mask.to(device).sum(dim=1)
    num_spans = mask_prob * sizes.double() / float(mask_length) + uniform((batch,), generator, device)
    num_spans = num_spans.floor().long().clamp_min(min_masks)
    start_limit = torch.where(sizes - mask_length <= num_spans, num_spans + 1, sizes - mask_length)
    width = max(length, int(start_limit.max()))
    positions = torch.arange(width, device=device)
    starts = random_subset(positions < start_limit[:, None], num_spans, generator)
    mask = span_cover(starts, mask_length)[:, :length] & (positions[:length] < sizes[:, None])
    counts = mask.sum(dim=1)
    full = counts >= sizes
    if full.any():
        row = int(full.nonzero()[0, 0])
        raise ValueError(
            f"span_mask masked every valid step of row {row} ({int(sizes[row])} of {length} steps valid) "
            f"with mask_prob={mask_prob}, mask_length={mask_length}: use longer inputs or shorter spans"
        )
    if require_same_masks:
        mask = resample_to_count(mask, int(counts.min()), generator)
    return mask


def block_mask_1d(
    batch: int,
    length: int,
    mask_prob: float,
    mask_length: int,
    mask_prob_adjust: float = 0.0,
    inverse_mask: bool = False,
    require_same_masks: bool = True,
    expand_adjacent: bool = False,
    mask_dropout: float = 0.0,
    non_overlapping: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """data2vec 2.0's 1-D block mask (fairseq `compute_block_mask_1d`), the precomputed mask of 2.0 audio.

    With p = `mask_prob` (1 - `mask_prob` when `inverse_mask`: p is then the kept share):
    `int(T * ((p + mask_prob_adjust) / mask_length) * (1 + mask_dropout))` centres drawn uniformly with
    replacement, each marking `mask_length` steps around it (from centre - mask_length // 2, clamped to
    [0, T - 1]); `non_overlapping` instead marks `int(ceil(T / mask_length) * (p + mask_prob_adjust) *
    (1 + mask_dropout))` distinct aligned blocks. `require_same_masks` then makes every row hold exactly
    `int(T * p)` marked steps: `expand_adjacent` first grows the marks into unmarked neighbours (random
    ones, round by round) up to `int(int(T * p) * (1 + mask_dropout))`, then random marked steps are
    removed or random unmarked ones added. `inverse_mask` returns the unmarked steps as masked. As in
    fairseq, `mask_dropout` only raises the number of centres and the growth target.

    The 2.0 audio recipe (`config/v2/base_audio_only_task.yaml`, `precompute_mask_config: {}`, whose
    `AudioMaskingConfig` takes the model's values): mask_prob 0.5, mask_length 5, mask_prob_adjust 0.05,
    inverse_mask False, mask_dropout 0, expand_adjacent False, non_overlapping False, require_same_masks
    True: 110 centres per 1000 steps, then exactly `int(0.5 T)` masked steps per row.

    Returns:
        bool `[B, T]`, True = masked.
    """
    _check_sizes(batch, length, mask_length)
    if not 0.0 <= mask_prob <= 1.0 or mask_dropout < 0.0:
        raise ValueError(
            f"need 0 <= mask_prob <= 1 and mask_dropout >= 0, got {mask_prob!r}, {mask_dropout!r}"
        )
    device = torch.device(device) if device is not None else draw_device(generator, None)
    p = 1 - mask_prob if inverse_mask else mask_prob
    if non_overlapping:
        num_blocks = math.ceil(length / mask_length)
        chosen = int(num_blocks * (p + mask_prob_adjust) * (1 + mask_dropout))
        if chosen > num_blocks:
            raise ValueError(
                f"block_mask_1d(non_overlapping=True) needs {chosen} of {num_blocks} blocks: lower "
                "mask_prob, mask_prob_adjust or mask_dropout"
            )
        blocks = random_subset(
            torch.ones(batch, num_blocks, dtype=torch.bool, device=device), chosen, generator
        )
        mask = blocks.repeat_interleave(mask_length, dim=1)[:, :length]
    else:
        num_centres = int(length * ((p + mask_prob_adjust) / mask_length) * (1 + mask_dropout))
        centres = randint(length, (batch, num_centres), generator, device)
        offsets = torch.arange(mask_length, device=device) - mask_length // 2
        marked = (centres[:, :, None] + offsets).clamp(0, length - 1).reshape(batch, -1)
        mask = torch.zeros(batch, length, dtype=torch.bool, device=device).scatter(1, marked, True)
    if require_same_masks:
        final_count = int(length * p)
        if expand_adjacent:
            mask = _grow_into_neighbours(mask, int(final_count * (1 + mask_dropout)), generator)
        mask = resample_to_count(mask, final_count, generator)
    return ~mask if inverse_mask else mask


def _grow_into_neighbours(mask: Tensor, target: int, generator: torch.Generator | None) -> Tensor:
    """Mark random unmarked steps next to a marked one, round by round, until each row holds `target`."""
    while True:
        missing = (target - mask.sum(dim=1)).clamp_min(0)
        if not missing.any():
            return mask
        padded = F.pad(mask, (1, 1))
        candidates = ~mask & (padded[:, :-2] | padded[:, 2:])
        stuck = (missing > 0) & ~candidates.any(dim=1)
        if stuck.any():
            raise ValueError(
                f"block_mask_1d(expand_adjacent=True): row {int(stuck.nonzero()[0, 0])} has no marked block "
                "to grow from; raise mask_prob or mask_prob_adjust"
            )
        mask = mask | random_subset(candidates, missing, generator)
