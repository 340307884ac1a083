"""Fixed-length clips: crop or pad one waveform, split it into sub-clips, collate a batch.

Every function returns a bool padding mask alongside the samples, True where a sample is padding
(the batch contract of docs/architecture.md). Padding is always zeros appended at the end.
"""

import math
from numbers import Integral, Real
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

CROP_MODES = ("start", "center", "random")


def _check_waveform(waveform: Tensor, num_samples: int) -> None:
    if not isinstance(waveform, Tensor) or waveform.dim() != 1:
        shape = tuple(waveform.shape) if isinstance(waveform, Tensor) else type(waveform).__name__
        raise ValueError(f"waveform must be a 1-D tensor [T]; got {shape}")
    if waveform.numel() == 0:
        raise ValueError("waveform is empty (0 samples); drop the clip instead of padding it to silence")
    if not isinstance(num_samples, Integral) or num_samples <= 0:
        raise ValueError(f"num_samples must be a positive int; got {num_samples!r}")


def _end_padding_mask(length: int, num_samples: int, device: torch.device) -> Tensor:
    """Bool `[num_samples]`, True from index `length` on."""
    return torch.arange(num_samples, device=device) >= length


def crop_or_pad(
    waveform: Tensor, num_samples: int, mode: str = "center", generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Cut `[T]` to exactly `num_samples`: (clip `[num_samples]`, padding_mask bool `[num_samples]`).

    Longer clips are cropped at the start, the centre (offset (T - num_samples) // 2) or a random
    offset drawn from `generator`; shorter clips keep all samples and get zeros appended at the end
    (mask True there), whatever the mode.
    """
    _check_waveform(waveform, num_samples)
    if mode not in CROP_MODES:
        raise ValueError(f"mode={mode!r} is not supported; choose one of {CROP_MODES}")
    length = waveform.shape[0]
    if length < num_samples:
        clip = F.pad(waveform, (0, num_samples - length))
        return clip, _end_padding_mask(length, num_samples, waveform.device)
    if mode == "start":
        offset = 0
    elif mode == "center":
        offset = (length - num_samples) // 2
    else:
        offset = int(torch.randint(length - num_samples + 1, (), generator=generator))
    clip = waveform[offset : offset + num_samples]
    return clip, torch.zeros(num_samples, dtype=torch.bool, device=waveform.device)


def split_subclips(
    waveform: Tensor, num_samples: int, hop_samples: int | None = None
) -> tuple[Tensor, Tensor]:
    """Split `[T]` into K sub-clips: (clips `[K, num_samples]`, padding_mask bool `[K, num_samples]`).

    Sub-clip k starts at k * hop_samples (default num_samples: contiguous; smaller: overlapping) and
    K = 1 + ceil(max(T - num_samples, 0) / hop_samples), so the last one reaches the end of the clip
    and is zero-padded (mask True) where it runs past it. A clip shorter than num_samples gives K = 1.
    """
    _check_waveform(waveform, num_samples)
    hop_samples = num_samples if hop_samples is None else hop_samples
    if not isinstance(hop_samples, Integral) or not 0 < hop_samples <= num_samples:
        raise ValueError(
            f"hop_samples must be an int in [1, num_samples={num_samples}] so that the sub-clips cover "
            f"the clip; got {hop_samples!r}"
        )
    length = waveform.shape[0]
    count = 1 + math.ceil(max(length - num_samples, 0) / hop_samples)
    total = (count - 1) * hop_samples + num_samples
    subclips = F.pad(waveform, (0, total - length)).unfold(0, num_samples, hop_samples)
    padding_mask = _end_padding_mask(length, total, waveform.device).unfold(0, num_samples, hop_samples)
    return subclips.contiguous(), padding_mask.contiguous()


def spaced_crops(waveform: Tensor, num_samples: int, count: int) -> tuple[Tensor, Tensor]:
    """`count` equally spaced crops of `[T]` that overlap when needed: (clips `[K, num_samples]`, padding_mask
    bool `[K, num_samples]`), crop k starting at round(k (T - num_samples) / (count - 1)), so the first starts
    the clip and the last ends it (HARES' AudioSet evaluation: 10 crops of 3 s of a 10 s clip). A clip no
    longer than num_samples gives K = 1, zero-padded at the end.
    """
    _check_waveform(waveform, num_samples)
    if not isinstance(count, Integral) or count < 1:
        raise ValueError(f"count must be a positive int; got {count!r}")
    length = waveform.shape[0]
    if length <= num_samples or count == 1:
        clip, mask = crop_or_pad(waveform, num_samples, mode="start")
        return clip[None], mask[None]
    starts = [round(k * (length - num_samples) / (count - 1)) for k in range(count)]
    clips = torch.stack([waveform[start : start + num_samples] for start in starts])
    return clips, torch.zeros(clips.shape, dtype=torch.bool, device=waveform.device)


def _collate_values(key: str, values: list[Any]) -> Tensor | list[Any]:
    """Stack tensors, turn bools/ints/floats into bool/int64/float32 tensors, keep anything else as a list."""
    if all(isinstance(value, Tensor) for value in values):
        shapes = {tuple(value.shape) for value in values}
        if len(shapes) > 1:
            raise ValueError(f"cannot stack key {key!r}: the items have different shapes {sorted(shapes)}")
        return torch.stack(values)
    if all(isinstance(value, bool) for value in values):
        return torch.tensor(values, dtype=torch.bool)
    if all(isinstance(value, Integral) and not isinstance(value, bool) for value in values):
        return torch.tensor(values, dtype=torch.int64)
    if all(isinstance(value, Real) and not isinstance(value, bool) for value in values):
        return torch.tensor(values, dtype=torch.float32)
    return list(values)


def collate_audio(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate variable-length items into a batch dict.

    Each item has `audio` `[T_i]`, optionally `padding_mask` bool `[T_i]`, and any other keys (the same
    in every item). `audio` is zero-padded at the end to `[B, max T_i]`; `padding_mask` `[B, max T_i]`
    is True where padded (and where an item's own mask was True). Other keys: tensors are stacked,
    ints become int64 `[B]`, floats float32 `[B]`, bools bool `[B]`, anything else (strings) a list.
    """
    if not items:
        raise ValueError("collate_audio got an empty list of items")
    keys = set(items[0]) - {"padding_mask"}
    for index, item in enumerate(items):
        if "audio" not in item:
            raise KeyError(f"item {index} has no 'audio' key (keys: {sorted(item)})")
        if set(item) - {"padding_mask"} != keys:
            raise KeyError(
                f"item {index} has keys {sorted(item)} but item 0 has {sorted(items[0])}; "
                "every item must carry the same keys"
            )
        audio = item["audio"]
        if not isinstance(audio, Tensor) or audio.dim() != 1:
            raise ValueError(f"item {index}: 'audio' must be a 1-D tensor [T]; got {audio!r:.80}")
        mask = item.get("padding_mask")
        if mask is not None and (mask.dtype != torch.bool or mask.shape != audio.shape):
            raise ValueError(
                f"item {index}: 'padding_mask' must be bool with the shape of 'audio' {tuple(audio.shape)}; "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )
    audios = [item["audio"] for item in items]
    masks = [
        item.get("padding_mask", torch.zeros(audio.shape, dtype=torch.bool, device=audio.device))
        for item, audio in zip(items, audios, strict=True)
    ]
    batch: dict[str, Any] = {
        "audio": pad_sequence(audios, batch_first=True, padding_value=0.0),
        "padding_mask": pad_sequence(masks, batch_first=True, padding_value=True),
    }
    for key in sorted(keys - {"audio"}):
        batch[key] = _collate_values(key, [item[key] for item in items])
    return batch
