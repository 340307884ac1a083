"""DABS (Tamkin et al. 2021, "DABS: a Domain-Agnostic Benchmark for Self-Supervised Learning"): the transfer
tasks of its six domains with their metrics and published scores, and `dabs-mini`, embedded stand-ins.

    ssl-lightning evaluate --suite dabs --data_root ROOT --ckpt runs/x/checkpoints/last.ckpt --tasks cifar10
    ssl-lightning evaluate --suite dabs-mini --ckpt runs/x/checkpoints/last.ckpt

Protocol (`DABS_PROBE`, DABS 1.0 `src/systems/transfer.py`, `conf/transfer.yaml`): frozen encoder, the mean
of all final tokens (the method's `embed`, 256-d), one linear layer, AdamW lr 1e-4 wd 1e-4 at a constant
rate for 100 epochs over the train split at the data set's batch size (`conf/dataset/*.yaml`), no model
selection; scored on the held-out split by the data set's metric: accuracy; macro AUROC (CheXpert,
ChestX-ray8); Spearman (STS-B, MSE on one output); Pearson (CoLA: one BCE output, correlated raw). DABS's
binary tasks (MRPC, QNLI, QQP, RTE, SST-2, WNLI, VQA, mismatched caption) train one BCE output and count
sigmoid > 0.5 right or wrong. A domain's score is the mean over its tasks; the suite's is the mean over the
six domains (the RQ paper's Table 10 "Average").

Published scores (percent), `random init` / `e-Mix` / `ShED` per task: the DABS README after the Jan-2023
captioned-images fix (GLUE is published only as its average, the text domain's score). Per domain:
`random init` ("Scratch"), `e-Mix` and `RQ` from Table 10 of the randomized-quantization paper (Wu et al.
2023; its suite score "Average" too), `ShED` from the DABS paper's main table. The paper's domain scores
are not all means of the README rows: natural images (e-Mix 27.9 vs 25.6) and ShED's chest x-rays (74.5 vs
68.1) differ, and Images & Text equals the pre-fix VQA score alone (57.5 / 48.9 / 54.3).

Every task has a datamodule; a task whose folder is missing under the data root fails when built, naming
the folder.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from ssl_lightning.eval.hares import HARES_DATA
from ssl_lightning.eval.probe import DABS_PROBE
from ssl_lightning.eval.suites import Suite, SuiteTask

PAPER_MODELS = ("random init", "e-Mix", "ShED", "RQ")
"""Published models: DABS's random-init encoder and its two objectives, and randomized quantization."""

IMAGES, TEXT, SPEECH, SENSORS, XRAY, CAPTIONED = (
    "natural images",
    "text",
    "speech",
    "sensors",
    "chest x-rays",
    "images & text",
)
DABS_DOMAINS = (IMAGES, TEXT, SPEECH, SENSORS, XRAY, CAPTIONED)

_ = None
README: dict[str, tuple[float | None, float | None, float | None]] = {
    "cifar10": (24.20, 39.43, 39.63),
    "cu_birds": (1.62, 3.86, 2.95),
    "vgg_flower": (9.03, 25.96, 13.03),
    "dtd": (7.39, 8.83, 18.35),
    "traffic_sign": (14.33, 65.07, 27.51),
    "aircraft": (2.70, 10.15, 5.60),
    "pamap2": (69.81, 79.48, 88.69),
    "vqa": (53.38, 58.77, 54.25),
    "mismatched_caption": (49.41, 49.86, 52.60),
    "chexpert": (68.14, 72.40, 72.40),
    "xray8": (57.00, 63.00, 63.70),
    "audio_mnist": (33.13, 80.35, 67.33),
    "fluent_location": (62.09, 60.93, 60.24),
    "fluent_action": (26.15, 29.87, 30.53),
    "fluent_object": (30.13, 39.89, 39.36),
    "speech_commands_v2": (4.87, 19.22, 20.73),
    "librispeech_speaker": (17.12, 60.18, 34.77),
    "voxceleb1": (0.59, 2.43, 2.81),
}
"""The DABS README's results table (random init, e-Mix, ShED), in percent (AUROC for the x-rays)."""

TABLE_10: dict[str, tuple[float, float, float]] = {
    IMAGES: (10.1, 27.9, 32.1),
    TEXT: (42.3, 44.1, 44.7),
    SPEECH: (24.9, 41.8, 44.5),
    SENSORS: (69.8, 79.5, 84.9),
    XRAY: (68.1, 72.4, 73.4),
    CAPTIONED: (57.5, 48.9, 54.5),
    "dabs": (45.5, 52.4, 55.6),
}
"""Table 10 of the RQ paper (Scratch, e-Mix, RQ), in percent: per domain and the "Average" over domains."""

SHED_DOMAINS = {IMAGES: 20.9, TEXT: 48.4, SPEECH: 36.5, SENSORS: 88.7, XRAY: 74.5, CAPTIONED: 54.3}
"""ShED's domain scores in the DABS paper's main table, in percent."""


@dataclass(frozen=True)
class DabsData:
    """Which datamodule serves a DABS task and where its data lives under the data root.

    Attributes:
        cls: `<module>.<class>` under `ssl_lightning.data` (imported when built).
        folder: what must exist under the data root (as the download unpacks).
        kwargs: the datamodule's arguments; values `"{root}/..."` are paths under the data root.
        source: speech: the audio datamodule (`<module>.<class>` under `ssl_lightning.data`) that
            `DabsSpeechDataModule` wraps, built from `{"root": <folder>}` and `source_kwargs`.
    """

    cls: str
    folder: str = ""
    kwargs: tuple[tuple[str, Any], ...] = ()
    source: str | None = None
    source_kwargs: tuple[tuple[str, Any], ...] = ()


def _speech(hares_task: str, stats: str, *kwargs: tuple[str, Any]) -> DabsData:
    """A DABS speech task over the HARES datamodule of `hares_task` (same folder), normalised with DABS's
    statistics `DABS_STATS[stats]`."""
    data = HARES_DATA[hares_task]
    return DabsData(
        "dabs.speech.DabsSpeechDataModule",
        data.folder,
        (("stats", stats), *kwargs),
        source=f"audio.{data.module}.{data.cls}",
        source_kwargs=data.kwargs,
    )


GLUE = ("cola", "mnli_matched", "mnli_mismatched", "mrpc", "qnli", "qqp", "rte", "sst2", "stsb", "wnli")
DABS_DATA: dict[str, DabsData] = {
    "cifar10": DabsData(
        "dabs.images.DabsCIFAR10DataModule",
        "cifar-10-batches-py",
        (("root", "{root}/cifar-10-batches-py"), ("small", False)),
    ),
    **{
        name: DabsData(
            "dabs.folders.DabsImageFolderDataModule",
            name,
            (("root", f"{{root}}/{name}"), ("test_dir", "test")),
        )
        for name in ("cu_birds", "vgg_flower", "dtd", "traffic_sign", "aircraft")
    },
    **{
        name: DabsData(
            "dabs.glue.GlueDataModule",
            "glue",
            (("task", name), ("hub", "{root}/glue"), ("tokenizer_dir", "{root}/bert-base-uncased")),
        )
        for name in GLUE
    },
    "audio_mnist": DabsData(
        "dabs.speech.DabsSpeechDataModule",
        "AudioMNIST-master",
        (("stats", "audio_mnist"), ("sample_rate", 48000)),
        source="audio.audio_mnist.AudioMNISTDataModule",
        source_kwargs=(("sample_rate", 48000),),
    ),
    "fluent_action": _speech("fluent_speech_commands", "fluent", ("slot", "action")),
    "fluent_object": _speech("fluent_speech_commands", "fluent", ("slot", "object")),
    "fluent_location": _speech("fluent_speech_commands", "fluent", ("slot", "location")),
    "speech_commands_v2": _speech("speech_commands_v2", "speech_commands"),
    "librispeech_speaker": DabsData(
        "dabs.speech.DabsSpeechDataModule",
        "LibriSpeech",
        (("stats", "librispeech"), ("train_on_valid", False)),
        source="audio.librispeech_speaker.LibriSpeechSpeakerDataModule",
    ),
    "voxceleb1": _speech("voxceleb1", "voxceleb1"),
    "pamap2": DabsData("dabs.sensors.PAMAP2DataModule", "PAMAP2_Dataset", (("root", "{root}"),)),
    "chexpert": DabsData("dabs.xrays.CheXpertDataModule", "CheXpert-v1.0-small", (("root", "{root}"),)),
    "xray8": DabsData("dabs.xrays.ChestXray8DataModule", "xray8", (("root", "{root}/xray8"),)),
    "vqa": DabsData(
        "dabs.vqa.VQADataModule",
        "vqa/coco-vqa",
        (("root", "{root}/vqa"), ("tokenizer_dir", "{root}/bert-base-uncased")),
    ),
    "mismatched_caption": DabsData(
        "dabs.coco.MismatchedCaptionDataModule",
        "mscoco",
        (("root", "{root}/mscoco"), ("tokenizer_dir", "{root}/bert-base-uncased")),
    ),
}

BATCH_SIZE = {IMAGES: 64, TEXT: 128, SPEECH: 64, SENSORS: 256, XRAY: 64, CAPTIONED: 64}
"""DABS's batch size per domain (`conf/dataset/*.yaml`; 256 also for the `_small` 32 x 32 images)."""


DOMAIN_TASKS: dict[str, tuple[str, ...]] = {
    IMAGES: ("cifar10", "cu_birds", "vgg_flower", "dtd", "traffic_sign", "aircraft"),
    TEXT: GLUE,
    SPEECH: (
        "audio_mnist",
        "fluent_action",
        "fluent_object",
        "fluent_location",
        "speech_commands_v2",
        "librispeech_speaker",
        "voxceleb1",
    ),
    SENSORS: ("pamap2",),
    XRAY: ("chexpert", "xray8"),
    CAPTIONED: ("vqa", "mismatched_caption"),
}
METRIC = {"cola": "pearson", "stsb": "spearman", "chexpert": "auroc", "xray8": "auroc"}
"""Each task's metric other than accuracy (`conf/dataset/*.yaml`)."""


def _task(name: str, domain: str) -> SuiteTask:
    paper = {
        model: value
        for model, value in zip(("random init", "e-Mix", "ShED"), README.get(name, (_, _, _)), strict=True)
        if value is not None
    }
    metric = METRIC.get(name, "accuracy")
    return SuiteTask(name, domain, metric, paper=paper, probe_batch_size=BATCH_SIZE[domain])


DABS_TASKS = {name: _task(name, domain) for domain, names in DOMAIN_TASKS.items() for name in names}

PAPER_SCORES: dict[str, dict[str, float]] = {
    key: {
        "random init": scratch,
        "e-Mix": emix,
        "RQ": rq,
        **({"ShED": SHED_DOMAINS[key]} if key in SHED_DOMAINS else {}),
    }
    for key, (scratch, emix, rq) in TABLE_10.items()
}
"""Published domain scores and the suite score ("dabs") per model, in percent (`Suite.paper_scores`)."""


def _class(path: str, task: str) -> type[L.LightningDataModule]:
    """The class `ssl_lightning.data.<path>`, or an error naming the missing module or class."""
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(f"ssl_lightning.data.{module}"), name)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"DABS task {task!r} needs ssl_lightning.data.{module}.{name}, which this installation lacks "
            f"({error}); leave the task out with --tasks"
        ) from error


def dabs_datamodule(
    task: str, root: str | None = None, fold: int | None = None, **kwargs: Any
) -> L.LightningDataModule:
    """The datamodule of DABS task `task`, reading its data set from its folder under the data root `root`
    (`DABS_DATA`); `kwargs` (batch_size, num_workers) pass through. `fold` is unused (no DABS task is
    cross-validated).

    Raises:
        ValueError: no data root is given.
        FileNotFoundError: the task's folder is missing under the data root.
    """
    data = DABS_DATA[task]
    cls = _class(data.cls, task)
    source = None if data.source is None else _class(data.source, task)
    if root is None:
        raise ValueError(
            "the dabs suite reads real data sets: pass --data_root ROOT, the folder holding each data set's "
            "folder (see ssl_lightning.eval.dabs.DABS_DATA), or run the embedded --suite dabs-mini"
        )
    folder = Path(root).expanduser() / data.folder
    if not folder.exists():
        raise FileNotFoundError(
            f"DABS task {task!r} reads {data.cls.rpartition('.')[2]} from {folder}, which does not exist; "
            "put the data set there as its download unpacks, or leave the task out with --tasks"
        )
    options = {
        key: value.format(root=root) if isinstance(value, str) else value for key, value in data.kwargs
    }
    if source is not None:
        stats = importlib.import_module("ssl_lightning.audio.dabs_logmel").DABS_STATS[options.pop("stats")]
        options |= {"mean": stats[0], "std": stats[1]}
        source_options = {k: v.format(root=root) if isinstance(v, str) else v for k, v in data.source_kwargs}
        options["source"] = source(root=str(folder), **source_options)
    return cls(**options, **kwargs)


DABS_SUITE = Suite(
    "dabs",
    DABS_TASKS,
    dabs_datamodule,
    PAPER_MODELS,
    score_over="domains",
    paper_scores=PAPER_SCORES,
    probe=DABS_PROBE,
)


MINI_DATA = {
    "digits": "dabs.images.DabsDigitsDataModule",
    "synthetic_sensors": "dabs.sensors.SyntheticSensorsDataModule",
    "speech_keywords": "dabs.speech.DabsSpeechDataModule",
    "mismatched_caption_digits": "dabs.captioned.CaptionedDigitsDataModule",
}
DABS_MINI_TASKS: dict[str, SuiteTask] = {
    "digits": SuiteTask("digits", IMAGES, "accuracy", probe_batch_size=256),
    "synthetic_sensors": SuiteTask(
        "synthetic_sensors", SENSORS, "accuracy", probe_batch_size=BATCH_SIZE[SENSORS]
    ),
    "speech_keywords": SuiteTask("speech_keywords", SPEECH, "accuracy", probe_batch_size=BATCH_SIZE[SPEECH]),
    "mismatched_caption_digits": SuiteTask(
        "mismatched_caption_digits", CAPTIONED, "accuracy", probe_batch_size=BATCH_SIZE[CAPTIONED]
    ),
}
"""The embedded stand-ins, one per domain that has one: scikit-learn's digits as `_small` images (DABS: batch
256), synthetic sensor windows, hares-mini's spoken keywords through DABS's speech front-end, and the digits
with generated captions under DABS's mismatched-caption rule (images & text). Text and chest x-rays have no
embedded transfer task."""


def dabs_mini_datamodule(
    task: str, root: str | None = None, fold: int | None = None, **kwargs: Any
) -> L.LightningDataModule:
    """The datamodule of `dabs-mini` task `task`; `root` is the library's data folder, where hares-mini
    generates its clips (the default one when None); `kwargs` (batch_size, num_workers) pass through."""
    cls = _class(MINI_DATA[task], task)
    if task == "speech_keywords":
        source = importlib.import_module("ssl_lightning.data.embedded.hares_mini").HaresMiniDataModule
        return cls(source=source("speech_keywords", root=root), **kwargs)
    if task == "mismatched_caption_digits":
        return cls(task="mismatched_caption", **kwargs)
    return cls(**kwargs)


DABS_MINI_SUITE = Suite(
    "dabs-mini",
    DABS_MINI_TASKS,
    dabs_mini_datamodule,
    score_over="domains",
    probe=DABS_PROBE,
    canonical_only=False,
)
"""`dabs-mini`: the DABS protocol on embedded data a fresh machine makes without downloads (CPU experiments);
its scores compare models with each other, never with the paper."""
