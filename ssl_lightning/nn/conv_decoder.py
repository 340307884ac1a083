"""data2vec 2.0's light convolutional decoder (fairseq `examples/data2vec/models/modalities/modules.py`).

The student encodes the visible tokens only; its outputs, with N(0, 0.01) noise at the masked positions,
are decoded back to the model width at every position. `layers` blocks of [grouped conv (`kernel_size`,
`groups`, "same" padding: k // 2 on both sides, the extra step cut for even k) -> LayerNorm over the
channels without affine parameters -> GELU], a block's input added to its output when `residual` and the
widths agree (so the first block only when `input_dim == decoder_dim`), then a projection to `input_dim`
(`projection_layers` > 1: Linear(decoder_dim, ratio * decoder_dim) -> GELU -> ... -> Linear(., input_dim)).
`input_dropout` acts on the decoder's input first. Layers keep PyTorch's default initialisation, as
fairseq resets them (`DecoderBase.reset_parameters`) after its model-wide BERT init.

Recipes (`config/v2/*.yaml`): audio 384 wide, kernel 7, 16 groups, 4 layers, input dropout 0.1; images
768, kernel 3, 16 groups, 6 layers, no input dropout (2-D on the patch grid); text 768, kernel 9, 1 group,
5 layers, no residual, 2 projection layers, input dropout 0.1.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn


def projection(decoder_dim: int, output_dim: int, layers: int, ratio: float) -> nn.Module:
    """fairseq's decoder projection: one Linear, or `layers` Linears (the first widens by `ratio`), GELUs."""
    if layers < 1:
        raise ValueError(f"projection_layers must be >= 1, got {layers}")
    modules: list[nn.Module] = []
    width = decoder_dim
    for i in range(layers - 1):
        wider = int(width * ratio) if i == 0 else width
        modules += [nn.Linear(width, wider), nn.GELU()]
        width = wider
    modules.append(nn.Linear(width, output_dim))
    return modules[0] if len(modules) == 1 else nn.Sequential(*modules)


class ConvDecoder(nn.Module):
    """The constructor, blocks and projection shared by `Decoder1d` and `Decoder2d`, which set `conv` (the
    block convolution: nn.Conv1d or nn.Conv2d)."""

    conv: type[nn.Conv1d] | type[nn.Conv2d]

    def __init__(
        self,
        input_dim: int,
        decoder_dim: int = 384,
        kernel_size: int = 7,
        groups: int = 16,
        layers: int = 4,
        residual: bool = True,
        input_dropout: float = 0.1,
        projection_layers: int = 1,
        projection_ratio: float = 2.0,
    ) -> None:
        super().__init__()
        if layers < 1 or kernel_size < 1:
            raise ValueError(f"need layers >= 1 and kernel_size >= 1, got {layers}, {kernel_size}")
        self.residual = residual
        self.input_dropout = nn.Dropout(input_dropout)
        self.convs = nn.ModuleList(
            self.conv(
                input_dim if i == 0 else decoder_dim,
                decoder_dim,
                kernel_size,
                padding=kernel_size // 2,
                groups=groups,
            )
            for i in range(layers)
        )
        self.proj = projection(decoder_dim, input_dim, projection_layers, projection_ratio)

    def dropout(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Input dropout `[B, N, D]`, off at the `mask` positions (bool `[B, N]`) when given: fairseq drops
        out the encoder outputs before it inserts the noise at the masked positions."""
        dropped = self.input_dropout(x)
        return dropped if mask is None else dropped.where(~mask[..., None], x)

    def blocks(self, h: Tensor, valid: Tensor | None) -> Tensor:
        """`h[B, C, *grid] -> [B, decoder_dim, *grid]`; `valid` `[B, 1, *grid]` zeroes what the convs read."""
        grid = h.shape[2:]
        for conv in self.convs:
            y = conv(h if valid is None else h * valid)
            y = y[(..., *(slice(0, size) for size in grid))]
            y = F.gelu(F.layer_norm(y.movedim(1, -1), y.shape[1:2]).movedim(-1, 1))
            h = y + h if self.residual and y.shape[1] == h.shape[1] else y
        return h


class Decoder1d(ConvDecoder):
    """data2vec 2.0's 1-D decoder (audio, text): `forward(x[B, T, D], padding_mask[B, T]) -> [B, T, D]`.

    fairseq's decoder ignores padding, so padded frames leak into their neighbours through the convs; here
    padded positions are zeroed before every conv (what the convs' zero padding would read at a clip's end),
    so a clip's valid outputs equal those of the clip decoded alone. Outputs at padded positions carry no
    meaning.
    """

    conv = nn.Conv1d

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """`x[B, T, D]` -> `[B, T, D]`; `padding_mask` bool `[B, T]` True where padded; `mask` bool `[B, T]`:
        the masked (noise) positions, spared by the input dropout."""
        if padding_mask is not None and padding_mask.shape != x.shape[:2]:
            raise ValueError(
                f"padding_mask must be [B, T] = {tuple(x.shape[:2])}, got {tuple(padding_mask.shape)}"
            )
        valid = None if padding_mask is None else (~padding_mask)[:, None, :].to(x.dtype)
        h = self.blocks(self.dropout(x, mask).transpose(1, 2), valid)
        return self.proj(h.transpose(1, 2))


class Decoder2d(ConvDecoder):
    """data2vec 2.0's 2-D decoder (images) on a `grid` (H, W) of patches: `x[B, H*W, D] -> [B, H*W, D]`.

    Patches are in row-major order. fairseq's Decoder2d always projects with one Linear; here
    `projection_layers` applies as in 1-D (the default 1 is fairseq's).
    """

    conv = nn.Conv2d

    def __init__(self, *args: Any, grid: tuple[int, int], **kwargs: Any) -> None:
        """`ConvDecoder`'s arguments, and the patch `grid` (H, W)."""
        super().__init__(*args, **kwargs)
        self.grid = tuple(grid)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """`x[B, H*W, D]` -> `[B, H*W, D]`; `mask` bool `[B, H*W]`: the masked (noise) positions, spared by
        the input dropout."""
        height, width = self.grid
        if x.shape[1] != height * width:
            raise ValueError(f"Decoder2d(grid={self.grid}) needs {height * width} patches, got {x.shape[1]}")
        h = self.dropout(x, mask).transpose(1, 2).reshape(x.shape[0], x.shape[2], height, width)
        h = self.blocks(h, None)
        return self.proj(h.flatten(2).transpose(1, 2))
