"""SpecAugment (Park et al., 2019): random frequency and time masks, drawn per sample, batched."""

import torch
from einops import rearrange
from torch import Tensor


def _random_band_mask(
    batch_size: int,
    size: int,
    mask_param: int,
    num_masks: int,
    generator: torch.Generator | None,
    device: torch.device,
) -> Tensor:
    """Bool `[B, size]`: the union of `num_masks` bands per row, each of width w = min(u, size) with u
    uniform on {0, 1, ..., mask_param} (both ends included), starting at s uniform on {0, ..., size - w},
    drawn independently for every row.

    Drawn on the generator's device when one is given, else on `device`.
    """
    device = generator.device if generator is not None else device
    draws = torch.rand(2, batch_size, num_masks, 1, generator=generator, device=device)
    widths = (draws[0] * (mask_param + 1)).floor().clamp(max=size)
    starts = (draws[1] * (size - widths + 1)).floor()
    positions = torch.arange(size, device=device)
    inside = (positions >= starts) & (positions < starts + widths)
    return inside.any(dim=1)


class SpecAugment(torch.nn.Module):
    """Set `num_freq_masks` mel bands and `num_time_masks` frame bands of `[B, frames, mels]` to `mask_value`.

    Each band's width is uniform on {0, 1, ..., param}, both ends included ("f is chosen from a
    uniform distribution from 0 to F", Park et al. 2019), and cut to the axis length; its start is
    uniform over the positions where it fits. Drawn independently per sample from `generator`.
    torchaudio's `mask_along_axis_iid` documents the same range but its code truncates
    `rand() * param`, so its widest band is param - 1 (and a param of 0 or 1 masks nothing).
    Training mode only; in eval mode the input is returned unchanged.
    """

    def __init__(
        self,
        freq_mask_param: int = 48,
        time_mask_param: int = 192,
        num_freq_masks: int = 1,
        num_time_masks: int = 1,
        mask_value: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in [
            ("freq_mask_param", freq_mask_param),
            ("time_mask_param", time_mask_param),
            ("num_freq_masks", num_freq_masks),
            ("num_time_masks", num_time_masks),
        ]:
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int; got {value!r}")
        self.freq_mask_param = freq_mask_param
        self.time_mask_param = time_mask_param
        self.num_freq_masks = num_freq_masks
        self.num_time_masks = num_time_masks
        self.mask_value = mask_value

    def forward(self, spec: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """`[B, frames, mels]` -> `[B, frames, mels]`: masked copy when training, `spec` itself in eval."""
        if spec.dim() != 3:
            raise ValueError(f"spec must be [B, frames, mels]; got shape {tuple(spec.shape)}")
        if not self.training:
            return spec
        batch_size, frames, mels = spec.shape
        time_mask = _random_band_mask(
            batch_size, frames, self.time_mask_param, self.num_time_masks, generator, spec.device
        )
        freq_mask = _random_band_mask(
            batch_size, mels, self.freq_mask_param, self.num_freq_masks, generator, spec.device
        )
        mask = rearrange(time_mask, "b t -> b t 1") | rearrange(freq_mask, "b f -> b 1 f")
        return spec.masked_fill(mask.to(spec.device), self.mask_value)

    def extra_repr(self) -> str:
        return (
            f"freq_mask_param={self.freq_mask_param}, time_mask_param={self.time_mask_param}, "
            f"num_freq_masks={self.num_freq_masks}, num_time_masks={self.num_time_masks}, "
            f"mask_value={self.mask_value}"
        )
