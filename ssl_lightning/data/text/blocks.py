"""Token blocks for masked-language-model pre-training, built as fairseq's `masked_lm` task builds them.

fairseq (`fairseq/tasks/masked_lm.py: _load_dataset_split`) reads the corpus as one stream of token ids,
every line followed by `</s>`, cuts it with `TokenBlockDataset(block_size=tokens_per_sample - 1)` and
prepends `<s>` to each block (`PrependTokenDataset`), so a block holds at most `tokens_per_sample`
tokens. Break modes (`fairseq/data/token_block_utils_fast.pyx: _get_slice_indices_fast`):

- "none" (data2vec 2.0 text, `config/v2/base_text_only_task.yaml`, tokens_per_sample 512): the
  documents are concatenated and the stream is cut every `block_size` tokens, across document
  boundaries; only the last block is shorter.
- "complete_doc" (data2vec 1.0 text, `config/text/pretraining/base.yaml`): a block never crosses a
  document boundary. Here a document is one line (fairseq packs several lines of one document, and
  keeps a line longer than a block whole); a document longer than `block_size` is cut into blocks of
  `block_size` and a shorter last one.

The `<s>` of each block and the batch padding are added when items are read and collated; masking is
left to the method (on device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import Dataset

BreakMode = Literal["none", "complete_doc"]
BREAK_MODES = ("none", "complete_doc")
ENCODE_CHUNK = 4096
"""Documents encoded per `encode_batch` call (keeps only their ids, not the Encoding objects)."""


def token_stream(
    documents: Sequence[str], tokenizer: Tokenizer, eos_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """(stream int32 `[N]`, document lengths int64 `[D]`): every document's ids followed by `eos_id`,
    concatenated; a document's length counts its `</s>`."""
    pieces: list[np.ndarray] = []
    for start in range(0, len(documents), ENCODE_CHUNK):
        encodings = tokenizer.encode_batch(
            list(documents[start : start + ENCODE_CHUNK]), add_special_tokens=False
        )
        pieces += [np.array([*encoding.ids, eos_id], dtype=np.int32) for encoding in encodings]
    lengths = np.array([piece.size for piece in pieces], dtype=np.int64)
    stream = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return stream, lengths


def block_bounds(
    lengths: np.ndarray, block_size: int, break_mode: BreakMode
) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) int64 `[K]` of the blocks of a stream whose documents have `lengths` (see the
    module docstring for the break modes); every block holds 1 to `block_size` tokens."""
    if break_mode not in BREAK_MODES:
        raise ValueError(f"sample_break_mode must be one of {BREAK_MODES}, got {break_mode!r}")
    if break_mode == "none":
        total = int(lengths.sum())
        starts = np.arange(0, total, block_size, dtype=np.int64)
        return starts, np.minimum(starts + block_size, total)
    doc_starts = np.cumsum(lengths) - lengths
    per_doc = -(-lengths // block_size)
    first = np.repeat(np.cumsum(per_doc) - per_doc, per_doc)
    starts = np.repeat(doc_starts, per_doc) + (np.arange(int(per_doc.sum())) - first) * block_size
    return starts, np.minimum(starts + block_size, np.repeat(doc_starts + lengths, per_doc))


class TokenBlocks(Dataset):
    """Blocks of a token stream: item k is int64 `[1 + ends[k] - starts[k]]`, `bos_id` then the block."""

    def __init__(self, stream: np.ndarray, starts: np.ndarray, ends: np.ndarray, bos_id: int) -> None:
        self.stream, self.starts, self.ends, self.bos_id = stream, starts, ends, bos_id

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, index: int) -> Tensor:
        block = torch.from_numpy(self.stream[self.starts[index] : self.ends[index]].astype(np.int64))
        return torch.cat([torch.tensor([self.bos_id]), block])


class PadTokens:
    """Collate blocks into `{"input_ids": int64 [B, L], "padding_mask": bool [B, L]}`: right-padded with
    `pad_id` to the longest block of the batch (as fairseq's `RightPadDataset`), True where padded."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, blocks: list[Tensor]) -> dict[str, Tensor]:
        lengths = torch.tensor([block.numel() for block in blocks])
        input_ids = pad_sequence(blocks, batch_first=True, padding_value=self.pad_id)
        padding_mask = torch.arange(input_ids.shape[1]) >= lengths[:, None]
        return {"input_ids": input_ids, "padding_mask": padding_mask}
