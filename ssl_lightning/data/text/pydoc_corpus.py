"""The embedded default text corpus: the English help topics every Python installation carries.

`pydoc_data.topics.topics` maps a topic name (`"assert"`, `"if"`, ...) to its text from the Python
reference manual (`help("assert")`); about 80 topics and 460k characters on Python 3.11. Documents are
the topics' paragraphs (blocks between blank lines, stripped, empty ones dropped), each kept once (large
topics such as "specialnames" repeat other topics' paragraphs), in topic-name order. A paragraph belongs
to the valid split when `crc32(paragraph) % VALID_EVERY == 0`: a split of the text itself, the same for
a paragraph on every Python version (versions add and edit topics); about 10% (196 of 2071 on 3.11).
"""

from __future__ import annotations

import re
import zlib
from pydoc_data.topics import topics

VALID_EVERY = 10
"""About one paragraph in VALID_EVERY is held out as the valid split."""
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def topic_paragraphs(text: str) -> list[str]:
    """The non-empty paragraphs of `text`, stripped, in order."""
    return [paragraph.strip() for paragraph in PARAGRAPH_BREAK.split(text) if paragraph.strip()]


def is_valid_paragraph(paragraph: str) -> bool:
    """Whether `paragraph` belongs to the valid split."""
    return zlib.crc32(paragraph.encode()) % VALID_EVERY == 0


def pydoc_documents(split: str) -> list[str]:
    """The distinct paragraphs of `split` ("train" or "valid"), in order of first appearance."""
    if split not in ("train", "valid"):
        raise ValueError(f"the pydoc corpus has the splits 'train' and 'valid', not {split!r}")
    paragraphs = dict.fromkeys(p for name in sorted(topics) for p in topic_paragraphs(topics[name]))
    return [paragraph for paragraph in paragraphs if is_valid_paragraph(paragraph) == (split == "valid")]
