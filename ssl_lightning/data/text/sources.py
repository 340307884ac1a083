"""Where the documents of the text datamodule come from: plain-text files (one document a line), a
Hugging Face `datasets` data set (hub id, local folder or `save_to_disk` folder), or a seeded hold-out.

Documents are stripped; empty ones (blank lines, empty rows) are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SAVED_DATASET_FILES = ("dataset_dict.json", "state.json")
"""A folder holding one of these was written by `save_to_disk` (read with `load_from_disk`)."""


def read_text_files(paths: Sequence[str | Path], argument: str) -> list[str]:
    """The non-empty lines of the UTF-8 files `paths`, in order.

    Raises:
        FileNotFoundError: naming every missing file and the argument (`argument`) that listed it.
    """
    missing = [str(path) for path in paths if not Path(path).expanduser().is_file()]
    if missing:
        raise FileNotFoundError(f"{argument}: text file(s) not found: {missing}")
    return [
        line.strip()
        for path in paths
        for line in Path(path).expanduser().read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def hold_out(documents: list[str], fraction: float, seed: int, source: str) -> tuple[list[str], list[str]]:
    """(train, valid): a seeded random `fraction` of `documents` (at least one) held out, both in
    their original order.

    Raises:
        ValueError: fewer than 2 documents (one for each split), naming `source`.
    """
    if len(documents) < 2:
        raise ValueError(
            f"{source} holds {len(documents)} document(s) (non-empty lines or rows); holding out a valid "
            "split needs at least 2: add documents or give the valid documents separately"
        )
    count = min(max(round(fraction * len(documents)), 1), len(documents) - 1)
    valid = np.zeros(len(documents), dtype=bool)
    valid[np.random.default_rng(seed).permutation(len(documents))[:count]] = True
    return (
        [doc for doc, held in zip(documents, valid, strict=True) if not held],
        [doc for doc, held in zip(documents, valid, strict=True) if held],
    )


def load_hf_splits(name: str, config: str | None, splits: Sequence[str], column: str) -> dict[str, list[str]]:
    """The documents of `splits` of the `datasets` data set `name`: a `save_to_disk` folder
    (`load_from_disk`; a single saved Dataset serves one split), else a hub id or local data folder
    (`load_dataset(name, config)`).

    Raises:
        ValueError: a split or the text column is missing (the message lists what there is), or the
            column does not hold strings.
    """
    import datasets  # here: a slow import that only this source needs

    folder = Path(name).expanduser()
    if folder.is_dir() and any((folder / file).is_file() for file in SAVED_DATASET_FILES):
        loaded = datasets.load_from_disk(str(folder))
    else:
        loaded = datasets.load_dataset(name, config)
    if isinstance(loaded, datasets.Dataset) and len(splits) > 1:
        raise ValueError(
            f"hf_dataset {name} is a single saved Dataset, without the splits {list(splits)}; save a "
            "DatasetDict (e.g. DatasetDict(train=..., validation=...)) or pass valid_split=None to hold out "
            "valid documents"
        )
    documents = {}
    for split in splits:
        if isinstance(loaded, datasets.Dataset):
            table = loaded
        elif split in loaded:
            table = loaded[split]
        else:
            raise ValueError(f"hf_dataset {name} has no split {split!r}; its splits: {list(loaded)}")
        if column not in table.column_names:
            raise ValueError(
                f"hf_dataset {name} split {split!r} has no column {column!r}; its columns: "
                f"{table.column_names} (set text_column)"
            )
        values = table[column]
        bad = next((value for value in values if not isinstance(value, str)), None)
        if bad is not None:
            raise ValueError(
                f"hf_dataset {name} column {column!r} must hold strings, found {type(bad).__name__} "
                f"{bad!r:.60}"
            )
        documents[split] = [value.strip() for value in values if value.strip()]
    return documents
