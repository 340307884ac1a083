"""DABS's English-text transfer tasks (Tamkin et al. 2021, `src/datasets/text/glue.py`): the ten GLUE tasks as
batches `{"input_ids": int64 [B, 128], "label": ..., "clip_id": int64 [B]}`.

As DABS 1.0 reads them from `datasets` `glue` (here `nyu-mll/glue`, its parquet copy): train on a task's
`train` split, report on its `validation` split as "test" (GLUE's test labels are hidden; "valid" serves it
too: DABS has no validation split); rows with an empty input text are dropped; the input texts (one
sentence, or a pair joined by the tokenizer: `[CLS] a [SEP] b [SEP]`) become exactly 128 ids (truncated
longest first, padded). MNLI trains on config `mnli`'s train split and reports on `mnli_matched` or
`mnli_mismatched`'s validation split.

Labels and metrics follow DABS's heads (`ssl_lightning/eval/dabs.py`): MNLI is 3-class ("single", int64
[B], accuracy); the binary tasks train one BCE output ("multi" with one class, the name of GLUE's label 1:
float [B, 1]) scored by accuracy at 0.5, CoLA by Pearson on the raw output; STS-B is "regression" (float
[B] similarity in [0, 5], Spearman).

Tokenizer: `tokenizer_dir` (bert-base-uncased's folder gives DABS's ids), else the offline byte-level BPE
that `DabsTextDataModule` trains, here on the task's train texts (ids then differ from DABS's; pairs
read `<s> a </s></s> b </s>`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import Tensor
from torch.utils.data import Dataset

from ssl_lightning.data.dabs.base import DabsDataModule, DabsLabelType, Mode
from ssl_lightning.data.dabs.text import DABS_SEQ_LEN, dabs_tokenizer
from ssl_lightning.nn.input_specs import InputSpec

GLUE_HUB = "nyu-mll/glue"


@dataclass(frozen=True)
class GlueTask:
    """One GLUE task as DABS reads it: the `(config, split)` of its train and test tables, its input text
    columns and GLUE's label names (label id order; empty for STS-B's regression)."""

    train: tuple[str, str]
    test: tuple[str, str]
    inputs: tuple[str, ...]
    label_names: tuple[str, ...]


def _task(config: str, inputs: tuple[str, ...], label_names: tuple[str, ...]) -> GlueTask:
    return GlueTask((config, "train"), (config, "validation"), inputs, label_names)


PAIR, NLI = ("sentence1", "sentence2"), ("premise", "hypothesis")
MNLI_LABELS = ("entailment", "neutral", "contradiction")
GLUE_TASKS: dict[str, GlueTask] = {
    "cola": _task("cola", ("sentence",), ("unacceptable", "acceptable")),
    "mnli_matched": GlueTask(("mnli", "train"), ("mnli_matched", "validation"), NLI, MNLI_LABELS),
    "mnli_mismatched": GlueTask(("mnli", "train"), ("mnli_mismatched", "validation"), NLI, MNLI_LABELS),
    "mrpc": _task("mrpc", PAIR, ("not_equivalent", "equivalent")),
    "qnli": _task("qnli", ("question", "sentence"), ("entailment", "not_entailment")),
    "qqp": _task("qqp", ("question1", "question2"), ("not_duplicate", "duplicate")),
    "rte": _task("rte", PAIR, ("entailment", "not_entailment")),
    "sst2": _task("sst2", ("sentence",), ("negative", "positive")),
    "stsb": _task("stsb", PAIR, ()),
    "wnli": _task("wnli", PAIR, ("not_entailment", "entailment")),
}
"""DABS's GLUE tasks (its names) as `datasets` `nyu-mll/glue` holds them."""
GLUE_METRIC = {"cola": "pearson", "stsb": "spearman"}
"""DABS's metric of a GLUE task other than accuracy."""


class GlueTexts(Dataset):
    """Rows of one input text or a pair as items `{"input_ids": int64 [length], "label": tensor}`, encoded
    when read."""

    def __init__(self, texts: list[tuple[str, ...]], labels: Tensor, tokenizer: Tokenizer) -> None:
        self.texts, self.labels, self.tokenizer = texts, labels, tokenizer

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        ids = self.tokenizer.encode(*self.texts[index]).ids
        return {"input_ids": torch.tensor(ids, dtype=torch.int64), "label": self.labels[index]}


class GlueDataModule(DabsDataModule):
    """One GLUE task of DABS's text domain (module docstring).

    Args:
        task: a key of `GLUE_TASKS` (DABS's names: "cola", "mnli_matched", ..., "wnli").
        hub: where the tables are: a `datasets` hub id (default `nyu-mll/glue`) or a local folder, read with
            `load_dataset(hub, <config>, split=<split>)` (a clone of the hub repository works), or holding
            `<config>/` folders written by `save_to_disk`; or the task's tables themselves, a mapping with
            "train" and "validation" `datasets.Dataset`s.
        tokenizer_dir: a Hugging Face tokenizer folder (bert-base-uncased for DABS's ids).
        vocab_size: size of the BPE trained when there is no `tokenizer_dir`.
        tokenizer_cache: folder of that BPE (default under `$SSL_LIGHTNING_DATA/tokenizers/`).
        batch_size: sequences per batch (DABS: 128).
        num_workers: DataLoader worker processes.
        seed: seed of the training shuffle.
    """

    def __init__(
        self,
        task: str,
        hub: str | Mapping[str, Any] = GLUE_HUB,
        tokenizer_dir: str | None = None,
        vocab_size: int = 8000,
        tokenizer_cache: str | None = None,
        batch_size: int = 128,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers, seed)
        self.save_hyperparameters(ignore=["hub"])
        if task not in GLUE_TASKS:
            raise ValueError(f"GlueDataModule: unknown GLUE task {task!r}; DABS's tasks: {list(GLUE_TASKS)}")
        self.task, self.spec, self.hub = task, GLUE_TASKS[task], hub
        self.tokenizer: Tokenizer | None = None
        self._splits: dict[str, tuple[list[tuple[str, ...]], Tensor]] = {}

    @property
    def label_type(self) -> DabsLabelType:
        """Labels: "regression" (STS-B), "single" (MNLI) or "multi" with one class (binary BCE heads)."""
        names = self.spec.label_names
        return "regression" if not names else "multi" if len(names) == 2 else "single"

    @property
    def classes(self) -> tuple[str, ...]:
        """Label names in output order: GLUE's label 1 alone for a binary task, none for STS-B."""
        return self.spec.label_names[1:] if self.label_type == "multi" else self.spec.label_names

    @property
    def metric(self) -> str:
        """DABS's metric of the task: "accuracy", "pearson" (CoLA) or "spearman" (STS-B)."""
        return GLUE_METRIC.get(self.task, "accuracy")

    @property
    def canonical(self) -> bool:
        """DABS's splits always; DABS's ids only with a `tokenizer_dir` (bert-base-uncased's)."""
        return self.hparams.tokenizer_dir is not None

    @property
    def split_note(self) -> str:
        (train_config, train), (test_config, test) = self.spec.train, self.spec.test
        ids = "tokenizer_dir ids" if self.canonical else "offline BPE ids (not bert-base-uncased's)"
        return (
            f"GLUE {train_config}[{train}] (train), {test_config}[{test}] (test; valid = test: DABS has no "
            f"valid split); {ids}"
        )

    @property
    def input_specs(self) -> list[InputSpec]:
        """`[InputSpec("input_ids", "tokens", 128, vocab_size=V)]` (V known after `setup`)."""
        if self.tokenizer is None:
            raise RuntimeError("GlueDataModule.setup() must run before asking for input_specs")
        return [InputSpec("input_ids", "tokens", DABS_SEQ_LEN, vocab_size=self.tokenizer.get_vocab_size())]

    def read_table(self, config: str, split: str) -> Any:
        """The `datasets.Dataset` of `(config, split)` from `hub`."""
        hub = self.hub
        if isinstance(hub, Mapping):
            if split not in hub:
                raise ValueError(
                    f"GlueDataModule({self.task!r}): the hub tables lack the {split!r} split ({config}'s); "
                    f"they have {list(hub)}"
                )
            return hub[split]
        import datasets  # here: a slow import that only this path needs

        saved = Path(hub).expanduser() / config
        if (saved / "dataset_dict.json").is_file():
            tables = datasets.load_from_disk(str(saved))
            if split not in tables:
                raise ValueError(f"{saved} has no split {split!r}; its splits: {list(tables)}")
            return tables[split]
        return datasets.load_dataset(hub, config, split=split)

    def read_split(self, config: str, split: str) -> tuple[list[tuple[str, ...]], Tensor]:
        """The input texts of the rows whose texts are all non-empty (DABS's filter) and their labels."""
        table, where = self.read_table(config, split), f"GLUE {config}[{split}]"
        wanted = (*self.spec.inputs, "label")
        missing = [column for column in wanted if column not in table.column_names]
        if missing:
            raise ValueError(f"{where} has no column(s) {missing}; its columns: {table.column_names}")
        names = getattr(table.features["label"], "names", None)
        if names is not None and tuple(names) != self.spec.label_names:
            raise ValueError(f"{where} labels are {names}, expected GLUE's {list(self.spec.label_names)}")
        rows = [
            (texts, label)
            for *texts, label in zip(*(table[column] for column in wanted), strict=True)
            if all(len(text) > 0 for text in texts)
        ]
        labels = torch.tensor([label for _, label in rows], dtype=torch.float32)
        if self.label_type != "regression":
            bad = sorted({int(value) for value in labels if not 0 <= value < len(self.spec.label_names)})
            if bad:
                raise ValueError(
                    f"{where} has labels {bad[:5]} outside [0, {len(self.spec.label_names)}) (GLUE's test "
                    "split has none: -1); DABS reports on the validation split"
                )
        labels = labels.long() if self.label_type == "single" else labels
        return [tuple(texts) for texts, _ in rows], labels[:, None] if self.label_type == "multi" else labels

    def load(self) -> None:
        """Read the train and test tables and the tokenizer."""
        train, test = self.read_split(*self.spec.train), self.read_split(*self.spec.test)
        self._splits = {"train": train, "valid": test, "test": test}
        hp = self.hparams
        texts = [text for row in train[0] for text in row]
        self.tokenizer = dabs_tokenizer(
            hp.tokenizer_dir, texts, hp.vocab_size, hp.tokenizer_cache, DABS_SEQ_LEN
        )

    def make_dataset(self, split: str, mode: Mode) -> GlueTexts:
        """`{"input_ids", "label"}` items of `split` (the same for both modes)."""
        assert self.tokenizer is not None  # load() ran
        return GlueTexts(*self._splits[split], self.tokenizer)
