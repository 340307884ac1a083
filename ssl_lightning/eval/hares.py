"""HARES (Wang et al. 2022, "Towards learning universal audio representations"): the 12 tasks, where each
data set lives under one data root, and the paper's per-task protocol and published scores (Table 4).

    ssl-lightning evaluate --suite hares --data_root ROOT --ckpt runs/x/checkpoints/last.ckpt

Protocol (paper, Appendix A): frozen encoder, global average pooling, a linear head (AudioSet: an MLP with
one hidden layer of 512), Adam with a 5k-step warm-up to 2e-4 then cosine, batch 64. Training crops and
evaluation sub-clips per task are in `HARES_CROPS`; test scores are averaged over a clip's sub-clips
(AudioSet: 10 overlapping, equally spaced 3 s crops). ESC-50 is 5-fold cross-validated. Fluent Speech
Commands predicts action, object and location with one softmax each and counts an utterance right only when
all three are right.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L

from ssl_lightning.eval.suites import Suite, SuiteTask

PAPER_MODELS = (
    "SF NFNet-F0",
    "SF ResNet50",
    "Wav2Vec2.0 (LS)",
    "Bidir-CPC",
    "BYOL-A",
    "PANNs-CNN14",
    "COLA",
    "BYOL-A [16]",
    "PANNs-CNN14 [8]",
    "CLMR",
)
"""The columns of the paper's Table 4: its own runs of six models, then four models' published numbers."""

_ = None
TABLE_4: dict[str, tuple[float | None, ...]] = {
    "audioset": (37.8, 36.6, 14.8, 28.7, 26.1, 38.9, _, _, 37.5, _),
    "birdsong": (77.6, 77.9, 60.9, 77.6, 77.1, 78.0, 77.0, _, _, _),
    "tut18": (96.8, 92.3, 49.3, 90.9, 76.3, 88.9, 94.0, _, _, _),
    "esc50": (91.1, 90.5, 69.2, 79.2, 82.3, 93.6, _, _, 90.8, _),
    "speech_commands_v1": (91.7, 88.8, 95.1, 92.0, 90.1, 71.4, 71.7, 91.0, _, _),
    "speech_commands_v2": (93.0, 91.5, 94.8, 92.4, 89.7, 76.4, 62.4, 92.2, _, _),
    "voxforge": (90.4, 89.2, 91.2, 89.1, 83.9, 78.5, 71.3, 90.2, _, _),
    "voxceleb1": (64.9, 59.4, 41.6, 40.7, 39.5, 30.9, 29.9, 40.1, _, _),
    "fluent_speech_commands": (46.1, 38.3, 55.3, 47.9, 31.3, 22.8, _, _, _, _),
    "nsynth_pitch": (88.0, 83.2, 34.6, 78.1, 71.4, 58.4, _, _, _, _),
    "nsynth_instrument": (78.2, 73.5, 40.2, 58.4, 73.6, 71.4, 63.4, 74.1, _, _),
    "magnatagatune": (39.5, 38.8, 31.7, 36.3, 37.1, 39.4, _, _, _, 36.0),
}
"""Table 4 of the paper, in percent (accuracy, or mAP for AudioSet and MagnaTagATune); None: not reported."""


@dataclass(frozen=True)
class HaresData:
    """Where a task's data set lives under the data root and which datamodule reads it.

    Attributes:
        module, cls: the datamodule class (`ssl_lightning.data.audio.<module>.<cls>`), imported when used.
        folder: the data set's folder under the data root, as its download unpacks.
        kwargs: the datamodule's task arguments; values `"{root}/..."` are paths under the data root.
        train_seconds, eval_seconds: the paper's training crop and evaluation sub-clip lengths.
    """

    module: str
    cls: str
    folder: str
    train_seconds: float
    eval_seconds: float
    kwargs: tuple[tuple[str, Any], ...] = ()


SC = "speech_commands_v0.02"
SC_TEST = "speech_commands_test_set_v0.02"
HARES_DATA: dict[str, HaresData] = {
    # AudioSet: every real copy misses videos (skip them; the split note counts them), and a valid split is
    # carved from train (5%) so that no head is ever selected on the eval set.
    "audioset": HaresData(
        "audioset",
        "AudioSetDataModule",
        "audioset",
        3.0,
        3.0,
        (("train_split", "full"), ("valid_fraction", 0.05), ("on_error", "skip")),
    ),
    "birdsong": HaresData("birdsong", "BirdsongDataModule", "birdsong", 1.0, 1.0),
    "tut18": HaresData("tut18", "TUT18DataModule", "TUT-urban-acoustic-scenes-2018-development", 5.0, 5.0),
    "esc50": HaresData("esc50", "ESC50DataModule", "ESC-50-master", 5.0, 5.0),
    "speech_commands_v1": HaresData(
        "speech_commands",
        "SpeechCommandsDataModule",
        SC,
        1.0,
        1.0,
        (("version", 1), ("v1_build", "tfds"), ("test_root", f"{{root}}/{SC_TEST}")),
    ),
    "speech_commands_v2": HaresData(
        "speech_commands", "SpeechCommandsDataModule", SC, 1.0, 1.0, (("version", 2),)
    ),
    "fluent_speech_commands": HaresData(
        "fluent", "FluentSpeechCommandsDataModule", "fluent_speech_commands_dataset", 3.0, 3.0
    ),
    "voxforge": HaresData("voxforge", "VoxForgeDataModule", "voxforge", 3.0, 3.0),
    "voxceleb1": HaresData("voxceleb", "VoxCeleb1DataModule", "voxceleb1", 3.0, 3.0),
    "nsynth_pitch": HaresData("nsynth", "NSynthDataModule", "nsynth", 1.0, 1.0, (("task", "pitch"),)),
    "nsynth_instrument": HaresData(
        "nsynth", "NSynthDataModule", "nsynth", 4.0, 4.0, (("task", "instrument"),)
    ),
    "magnatagatune": HaresData("magnatagatune", "MagnaTagATuneDataModule", "magnatagatune", 3.0, 3.0),
}


def _task(name: str, domain: str, metric: str = "accuracy", **kwargs: Any) -> SuiteTask:
    paper = {
        model: value for model, value in zip(PAPER_MODELS, TABLE_4[name], strict=True) if value is not None
    }
    return SuiteTask(name, domain, metric, paper=paper, **kwargs)


HARES_TASKS: dict[str, SuiteTask] = {
    task.name: task
    for task in (
        _task("audioset", "environment", "mAP", hidden_dim=512, eval_crops=10),
        _task("birdsong", "environment"),
        _task("tut18", "environment"),
        _task("esc50", "environment", folds=(1, 2, 3, 4, 5), svm=True),
        _task("speech_commands_v1", "speech"),
        _task("speech_commands_v2", "speech"),
        _task("voxforge", "speech"),
        _task("voxceleb1", "speech"),
        _task("fluent_speech_commands", "speech", "all_slots"),
        _task("nsynth_pitch", "music"),
        _task("nsynth_instrument", "music"),
        _task("magnatagatune", "music", "mAP"),
    )
}


def hares_datamodule(
    task: str, root: str | None = None, fold: int | None = None, **kwargs: Any
) -> L.LightningDataModule:
    """The datamodule of HARES task `task` reading its data set from its folder under the data root `root`
    (`HARES_DATA`), with the paper's crops; `fold` for ESC-50; `kwargs` (batch_size, num_workers, ...) pass
    through.

    Raises:
        ValueError: no data root given.
        FileNotFoundError: the task's folder is missing (the message names it and what it must hold).
    """
    if root is None:
        raise ValueError(
            "the hares suite reads real data sets: pass --data_root ROOT, the folder holding each data set's "
            f"folder ({', '.join(sorted({data.folder for data in HARES_DATA.values()}))}); see "
            "docs/hares.md for where to obtain each"
        )
    data = HARES_DATA[task]
    folder = Path(root).expanduser() / data.folder
    if not folder.is_dir():
        raise FileNotFoundError(
            f"HARES task {task!r} reads {data.cls} from {folder}, which does not exist; put the data set "
            f"there as its download unpacks, or leave the task out with --tasks (see docs/hares.md)"
        )
    options = {
        key: value.format(root=root) if isinstance(value, str) else value for key, value in data.kwargs
    }
    if fold is not None:
        options["fold"] = fold
    cls = getattr(importlib.import_module(f"ssl_lightning.data.audio.{data.module}"), data.cls)
    return cls(
        root=str(folder),
        clip_seconds=data.eval_seconds,
        train_seconds=data.train_seconds,
        **options,
        **kwargs,
    )


HARES_SUITE = Suite("hares", HARES_TASKS, hares_datamodule, ("SF NFNet-F0", "BYOL-A", "Wav2Vec2.0 (LS)"))
