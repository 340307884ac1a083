"""Tiny plain-text corpus layout: `root/corpus/train.txt`, one document a line.

The documents are the first paragraphs of Python's help topics (real English text, the wrapped lines
joined by spaces), with blank lines in between that the loader must skip. The BPE is trained into
`root/corpus/tokenizer/` (not the shared cache).
"""

from __future__ import annotations

from pathlib import Path
from pydoc_data.topics import topics

TOPICS = ("assert", "assignment", "async", "break", "class", "continue", "del", "for", "global", "if")
PARAGRAPHS_PER_TOPIC = 4


def corpus_lines() -> list[str]:
    """The documents of the corpus, in file order."""
    lines = []
    for name in TOPICS:
        paragraphs = [" ".join(p.split()) for p in topics[name].split("\n\n") if p.strip()]
        lines += paragraphs[:PARAGRAPHS_PER_TOPIC]
    return lines


def write_corpus(root: Path) -> Path:
    """Write `root/corpus/train.txt` (documents separated by a blank line every 5) and return it."""
    folder = Path(root) / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    lines = corpus_lines()
    text = "".join(f"{line}\n" + ("\n" if i % 5 == 4 else "") for i, line in enumerate(lines))
    (folder / "train.txt").write_text(text, encoding="utf-8")
    return folder / "train.txt"


def make(root: Path) -> dict:
    """The corpus under `root`; the `data.init_args` overrides that point a recipe at it."""
    path = write_corpus(root)
    return {"files": [str(path)], "tokenizer_cache": str(path.parent / "tokenizer")}
