import pytest
import torch

from ssl_lightning.nn.pooling import masked_max, masked_mean


def test_masked_mean_and_max_ignore_padding():
    x = torch.tensor([[[1.0], [3.0], [100.0]], [[2.0], [4.0], [6.0]]])
    mask = torch.tensor([[False, False, True], [False, False, False]])
    assert masked_mean(x, mask).flatten().tolist() == [2.0, 4.0]
    assert masked_max(x, mask).flatten().tolist() == [3.0, 6.0]
    assert masked_mean(x).flatten().tolist() == pytest.approx([104 / 3, 4.0])


def test_all_padding_row_gives_zeros_not_nan():
    x = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, True], [False, True, True]])
    assert torch.equal(masked_mean(x, mask)[0], torch.zeros(4))
    assert torch.equal(masked_max(x, mask)[0], torch.zeros(4))
    assert torch.equal(masked_mean(x, mask)[1], x[1, 0])
