"""The conv positional embedding at kept positions only (visible-token encoding of BEATs MAM): worked
examples, equality with the dense conv of the zero-filled sequence (values and gradients), wiring."""

import pytest
import torch
from torch.testing import assert_close

from ssl_lightning.nn.conv_position import ConvPositionalEmbedding
from ssl_lightning.nn.transformer import TransformerEncoder


def scalar_conv(taps: list[float]) -> ConvPositionalEmbedding:
    """A 1-channel conv whose weight-normed taps are `taps` (v = 1, so each tap is its g), bias 0."""
    module = ConvPositionalEmbedding(dim=1, kernel_size=len(taps), groups=1)
    with torch.no_grad():
        module.weight_v.fill_(1.0)
        module.weight_g.copy_(torch.tensor(taps).view(1, 1, -1))
    return module


def zero_filled(x: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
    """`x[B, K, D]` placed at `positions[B, K]` of a zero `[B, length, D]` sequence."""
    index = positions[..., None].expand(-1, -1, x.shape[-1])
    return x.new_zeros(x.shape[0], length, x.shape[-1]).scatter(1, index, x)


def at(sequence: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The rows `positions[B, K]` of `sequence[B, N, D]`: `[B, K, D]`."""
    return sequence.gather(1, positions[..., None].expand(-1, -1, sequence.shape[-1]))


def random_positions(batch: int, length: int, count: int, generator: torch.Generator) -> torch.Tensor:
    return torch.stack([torch.randperm(length, generator=generator)[:count] for _ in range(batch)])


def test_sparse_conv_worked_example():
    # kernel 4, "same" padding 2: output t reads positions t-2 .. t+1 with taps 1, 2, 3, 4
    module = scalar_conv([1.0, 2.0, 3.0, 4.0])
    x = torch.tensor([[[1.0], [10.0], [100.0]]])
    positions = torch.tensor([[1, 2, 4]])
    weight = torch._weight_norm(module.weight_v, module.weight_g, 2)
    pre_gelu = module.sparse_conv(x, weight, positions, length=6)
    # t=1: 3*x1 + 4*x2 = 43; t=2: 2*x1 + 3*x2 = 32; t=4: 1*x2 + 3*x4 = 310 (x0, x3, x5 are zero)
    assert_close(pre_gelu, torch.tensor([[[43.0], [32.0], [310.0]]]))
    assert_close(module(x, positions, 6), module(zero_filled(x, positions, 6))[:, [1, 2, 4]])


def test_tap_pairs_sort_neighbours_by_offset_and_leave_out_the_centre():
    module = scalar_conv([1.0, 2.0, 3.0, 4.0])
    sources, targets = module.tap_pairs(torch.tensor([[1, 2, 4]]), length=6)
    # rows 0, 1, 2 are positions 1, 2, 4; 3 is the zero row. Offset -2: output 4 reads position 2;
    # -1: output 2 reads 1; 0 (centre) is the dense product; +1: output 1 reads 2.
    assert sources.tolist() == [[1], [0], [3], [1]]
    assert targets.tolist() == [[2], [1], [3], [0]]


@pytest.mark.parametrize(
    ("kernel_size", "groups", "length", "count"),
    [(16, 4, 40, 10), (7, 2, 30, 12), (16, 4, 9, 4), (8, 2, 20, 1), (6, 2, 12, 12)],
    ids=["even_kernel", "odd_kernel", "shorter_than_kernel", "one_token", "all_kept"],
)
def test_sparse_conv_equals_the_dense_conv_of_the_zero_filled_sequence(kernel_size, groups, length, count):
    generator = torch.Generator().manual_seed(kernel_size + length + count)
    sparse = ConvPositionalEmbedding(dim=8, kernel_size=kernel_size, groups=groups)
    with torch.no_grad():
        sparse.weight_g.mul_(torch.rand(kernel_size, generator=generator) + 0.5)
        sparse.bias.copy_(torch.randn(8, generator=generator))
    dense = ConvPositionalEmbedding(dim=8, kernel_size=kernel_size, groups=groups)
    dense.load_state_dict(sparse.state_dict())
    positions = random_positions(2, length, count, generator)  # unsorted, may hold 0 and length - 1
    x = torch.randn(2, count, 8, generator=generator)
    upstream = torch.randn(2, count, 8, generator=generator)
    x_sparse, x_dense = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_sparse = sparse(x_sparse, positions, length)
    out_dense = at(dense(zero_filled(x_dense, positions, length)), positions)
    assert_close(out_sparse, out_dense, atol=1e-5, rtol=1e-5)
    (out_sparse * upstream).sum().backward()
    (out_dense * upstream).sum().backward()
    assert_close(x_sparse.grad, x_dense.grad, atol=1e-5, rtol=1e-5)
    for name, parameter in sparse.named_parameters():
        assert_close(parameter.grad, dict(dense.named_parameters())[name].grad, atol=1e-5, rtol=1e-5)


def test_sparse_conv_input_errors():
    module = ConvPositionalEmbedding(dim=4, kernel_size=4, groups=2)
    x = torch.randn(2, 3, 4)
    positions = torch.tensor([[0, 2, 5], [1, 3, 4]])
    with pytest.raises(ValueError, match="needs int64 positions"):
        module(x, positions)
    with pytest.raises(ValueError, match="needs int64 positions"):
        module(x, positions[:, :2], 8)
    with pytest.raises(ValueError, match="needs int64 positions"):
        module(x, positions.int(), 8)


def test_kept_tokens_get_the_conv_of_the_zero_filled_sequence_before_the_layers():
    torch.manual_seed(0)
    encoder = TransformerEncoder(
        dim=8, num_layers=0, num_heads=2, ffn_dim=8, conv_pos=6, conv_pos_groups=2, deep_norm=False
    ).eval()
    x = torch.randn(2, 15, 8)
    padding = torch.zeros(2, 15, dtype=torch.bool)
    padding[1, 12:] = True
    keep = torch.tensor([[9, 0, 4, 5, 14], [13, 2, 3, 8, 11]])  # item 1 keeps a padded patch
    hidden = torch.ones(2, 15, dtype=torch.bool).scatter(1, keep, False) | padding
    zeroed = x.masked_fill(hidden[..., None], 0.0)
    expected = at(encoder.layer_norm(zeroed + encoder.pos_conv(zeroed)), keep)
    assert_close(encoder(x, padding, keep), expected, atol=1e-5, rtol=1e-5)
