"""data2vec 2.0's conv decoder against a naive loop reference written here (grouped "same" conv, LayerNorm
without affine, exact GELU, the residual rule, the projection), plus padding, input dropout and the layout."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ssl_lightning.nn.conv_decoder import Decoder1d, Decoder2d


def gelu(v: float) -> float:
    return 0.5 * v * (1 + math.erf(v / math.sqrt(2)))


def layer_norm(values: list[float]) -> list[float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return [(v - mean) / math.sqrt(var + 1e-5) for v in values]


def naive_conv(x: list, conv: nn.Module, grid: tuple[int, ...]) -> list:
    """x[position][channel] over a row-major `grid` (1-D or 2-D): grouped conv, zeros beyond the borders,
    window starting at -k // 2 (so even kernels reach one step further back than forward)."""
    w, b = conv.weight.tolist(), conv.bias.tolist()
    k, groups = conv.kernel_size[0], conv.groups
    out_channels, in_per_group = len(w), len(w[0])
    out_per_group = out_channels // groups
    offsets = [j - k // 2 for j in range(k)]
    out = []
    for p in range(math.prod(grid)):
        coords = divmod(p, grid[1]) if len(grid) == 2 else (p,)
        row = []
        for o in range(out_channels):
            g = o // out_per_group
            total = b[o]
            for i in range(in_per_group):
                taps = w[o][i]
                for index in _taps(coords, offsets, grid):
                    position, weight_index = index
                    if position is not None:
                        weight = taps
                        for j in weight_index:
                            weight = weight[j]
                        total += weight * x[position][g * in_per_group + i]
            row.append(total)
        out.append(row)
    return out


def _taps(coords: tuple[int, ...], offsets: list[int], grid: tuple[int, ...]):
    """(flat input position or None outside the grid, kernel index) for every kernel tap."""
    if len(grid) == 1:
        for j, d in enumerate(offsets):
            t = coords[0] + d
            yield (t if 0 <= t < grid[0] else None), (j,)
        return
    for a, dr in enumerate(offsets):
        for c, dc in enumerate(offsets):
            r, q = coords[0] + dr, coords[1] + dc
            inside = 0 <= r < grid[0] and 0 <= q < grid[1]
            yield (r * grid[1] + q if inside else None), (a, c)


def naive_decoder(decoder, x: torch.Tensor, grid: tuple[int, ...], residual: bool) -> torch.Tensor:
    out = []
    for sample in x.tolist():
        h = sample
        for conv in decoder.convs:
            y = [[gelu(v) for v in layer_norm(row)] for row in naive_conv(h, conv, grid)]
            if residual and len(y[0]) == len(h[0]):
                y = [[a + b for a, b in zip(ry, rh, strict=True)] for ry, rh in zip(y, h, strict=True)]
            h = y
        out.append(h)
    with torch.no_grad():
        return decoder.proj(torch.tensor(out))


@pytest.mark.parametrize(
    ("input_dim", "decoder_dim", "kernel", "groups", "residual"),
    [(8, 8, 3, 2, True), (12, 8, 3, 4, True), (8, 8, 4, 1, True), (6, 4, 5, 2, False)],
)
def test_decoder1d_matches_the_naive_reference(input_dim, decoder_dim, kernel, groups, residual):
    torch.manual_seed(0)
    decoder = Decoder1d(input_dim, decoder_dim, kernel, groups, 2, residual, input_dropout=0.1).eval()
    x = torch.randn(2, 5, input_dim)
    with torch.no_grad():
        out = decoder(x)
    assert out.shape == (2, 5, input_dim)
    assert torch.allclose(out, naive_decoder(decoder, x, (5,), residual), atol=1e-5)


@pytest.mark.parametrize("kernel", [3, 2])
def test_decoder2d_matches_the_naive_reference_on_a_row_major_grid(kernel):
    torch.manual_seed(1)
    decoder = Decoder2d(8, 8, kernel, 2, 2, True, 0.0, grid=(2, 3)).eval()
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        out = decoder(x)
    assert out.shape == (2, 6, 8)
    assert torch.allclose(out, naive_decoder(decoder, x, (2, 3), True), atol=1e-5)


def test_the_text_projection_widens_by_the_ratio_then_returns():
    decoder = Decoder1d(8, 8, 9, 1, 5, False, 0.1, projection_layers=2, projection_ratio=2.0)
    linears = [m for m in decoder.proj.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 16), (16, 8)]
    assert isinstance(decoder.proj[1], nn.GELU)
    deeper = Decoder1d(8, 4, 3, 1, 1, projection_layers=3, projection_ratio=1.5)
    linears = [m for m in deeper.proj.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 6), (6, 6), (6, 8)]


def test_only_convs_and_the_projection_carry_parameters():
    """LayerNorm without affine: a 4-layer audio decoder has 4 conv weights + biases and one Linear."""
    decoder = Decoder1d(32, 16, 7, 16, 4)
    names = sorted(name for name, _ in decoder.named_parameters())
    assert names == sorted(
        [f"convs.{i}.{p}" for i in range(4) for p in ("weight", "bias")] + ["proj.bias", "proj.weight"]
    )
    assert decoder.convs[0].weight.shape == (16, 2, 7)  # grouped: 32 / 16 input channels per group


def test_padded_frames_do_not_reach_the_valid_ones():
    """A padded clip's valid outputs equal those of the clip decoded alone, whatever the padding holds."""
    torch.manual_seed(2)
    decoder = Decoder1d(8, 8, 5, 2, 3).eval()
    clip = torch.randn(1, 6, 8)
    batch = torch.cat([clip, 100 * torch.randn(1, 4, 8)], dim=1)
    padding = torch.tensor([[False] * 6 + [True] * 4])
    with torch.no_grad():
        alone = decoder(clip)
        padded = decoder(batch, padding)
        unmasked = decoder(batch)
    assert torch.allclose(padded[:, :6], alone, atol=1e-5)
    assert not torch.allclose(unmasked[:, :6], alone, atol=1e-3)  # without the mask the padding leaks in


def test_input_dropout_spares_the_masked_positions():
    torch.manual_seed(3)
    decoder = Decoder1d(8, 8, 3, 1, 1, input_dropout=0.5).train()
    x = torch.ones(2, 10, 8)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, ::2] = True
    dropped = decoder.dropout(x, mask)
    assert torch.equal(dropped[mask], x[mask])
    assert set(dropped[~mask].unique().tolist()) == {0.0, 2.0}
    assert torch.equal(decoder.eval().dropout(x, None), x)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match=r"Decoder2d\(grid=\(2, 3\)\) needs 6 patches, got 5"):
        Decoder2d(8, 8, 3, 1, 1, grid=(2, 3))(torch.zeros(1, 5, 8))
    with pytest.raises(ValueError, match=r"padding_mask must be \[B, T\] = \(1, 5\)"):
        Decoder1d(8, 8, 3, 1, 1)(torch.zeros(1, 5, 8), torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="projection_layers must be >= 1"):
        Decoder1d(8, 8, 3, 1, 1, projection_layers=0)
