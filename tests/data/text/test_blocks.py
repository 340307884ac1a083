"""Tests for fairseq-style token blocks (ssl_lightning/data/text/blocks.py) on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers

from ssl_lightning.data.text.blocks import PadTokens, TokenBlocks, block_bounds, token_stream


def test_none_mode_cuts_the_stream_across_documents():
    # documents of 3, 5 and 2 tokens (</s> included): stream of 10, blocks of 4 -> [0,4) [4,8) [8,10)
    starts, ends = block_bounds(np.array([3, 5, 2]), 4, "none")
    assert starts.tolist() == [0, 4, 8] and ends.tolist() == [4, 8, 10]


def test_complete_doc_mode_never_crosses_a_document():
    # documents at [0,3) [3,8) [8,10): the 5-token one splits into 4 + 1
    starts, ends = block_bounds(np.array([3, 5, 2]), 4, "complete_doc")
    assert starts.tolist() == [0, 3, 7, 8] and ends.tolist() == [3, 7, 8, 10]


def test_block_size_one_and_exact_multiples():
    assert block_bounds(np.array([2, 1]), 1, "none")[0].tolist() == [0, 1, 2]
    starts, ends = block_bounds(np.array([4, 8]), 4, "complete_doc")
    assert starts.tolist() == [0, 4, 8] and ends.tolist() == [4, 8, 12]


def test_unknown_break_mode_is_named():
    with pytest.raises(ValueError, match="sample_break_mode must be one of .* got 'eos'"):
        block_bounds(np.array([3]), 4, "eos")


def test_token_stream_appends_eos_to_every_document():
    tokenizer = Tokenizer(models.WordLevel({"x": 5, "y": 6, "z": 7, "?": 9}, unk_token="?"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    stream, lengths = token_stream(["x y", "z", "y q x"], tokenizer, eos_id=2)
    assert stream.tolist() == [5, 6, 2, 7, 2, 6, 9, 5, 2]
    assert lengths.tolist() == [3, 2, 4]


def test_blocks_start_with_bos_and_pad_on_the_right():
    stream = np.array([5, 6, 2, 7, 2], dtype=np.int32)
    blocks = TokenBlocks(stream, np.array([0, 3]), np.array([3, 5]), bos_id=0)
    assert blocks[0].tolist() == [0, 5, 6, 2] and blocks[1].tolist() == [0, 7, 2]
    assert blocks[0].dtype == torch.int64
    batch = PadTokens(pad_id=1)([blocks[1], blocks[0]])
    assert batch["input_ids"].tolist() == [[0, 7, 2, 1], [0, 5, 6, 2]]
    assert batch["padding_mask"].tolist() == [[False, False, False, True], [False] * 4]
