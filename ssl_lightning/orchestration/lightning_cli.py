"""The library's LightningCLI: `fit`/`validate`/`test`/`predict` of any method and datamodule from
YAML recipes, with the defaults every run gets (seed 0, TensorBoard + CSV logs under `runs/`, a
configurable `checkpoint` with `last.ckpt`, exact resumption with `--ckpt_path last|PATH`, a clear stop
on a non-finite loss, and on SIGTERM a resumable `last.ckpt` and exit status 143)."""

from __future__ import annotations

import signal
import sys
import warnings
from argparse import RawDescriptionHelpFormatter
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException

import ssl_lightning.data  # noqa: F401  (registers datamodules for short class names)
import ssl_lightning.eval.callback  # noqa: F401  (registers evaluation callbacks)
from ssl_lightning.callbacks import (
    CheckpointGuard,
    FiniteLossGuard,
    RandomStateCheckpoint,
)
from ssl_lightning.methods import SSLMethod

# Lightning 2.6 on torch >= 2.10 trips torch's own deprecation of `LeafSpec` checks once per fit; nothing a
# user can act on, so the CLI's runs do not print it.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def run_loggers(save_dir: str) -> list[dict]:
    """TensorBoard logs in `save_dir/version_N` and CSV logs in `save_dir/csv/version_N` (as configs)."""
    return [
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": save_dir, "name": ""},
        },
        {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": save_dir, "name": "csv"},
        },
    ]


TRAINER_DEFAULTS = {
    "logger": run_loggers("runs"),
    "callbacks": [FiniteLossGuard(), RandomStateCheckpoint(), CheckpointGuard()],
}

SIGTERM_EXIT = 128 + signal.SIGTERM
"""Exit status of a fit stopped by SIGTERM (the shell's convention), so that a scheduler or an `&&`
chain does not read a pre-empted run as finished."""


def find_last_checkpoint(trainer: L.Trainer) -> Path:
    """The newest `last*.ckpt` that `--ckpt_path last` resumes: in `checkpoint.dirpath` when set, else in
    the `*/checkpoints` folders of the first logger's root (`runs/version_N/checkpoints`: each run
    has a new version, so Lightning itself would look in the new, empty one and start over).

    Raises FileNotFoundError naming where it looked when there is none.
    """
    ckpt = trainer.checkpoint_callback
    if ckpt is not None and ckpt.dirpath is not None:
        folder, pattern = Path(ckpt.dirpath), "last*.ckpt"
    elif trainer.loggers:
        logger = trainer.loggers[0]
        folder = Path(logger.save_dir or trainer.default_root_dir, logger.name or "")
        pattern = "*/checkpoints/last*.ckpt"
    else:
        folder, pattern = Path(trainer.default_root_dir), "checkpoints/last*.ckpt"
    found = sorted(folder.glob(pattern), key=lambda path: path.stat().st_mtime)
    if not found:
        raise FileNotFoundError(
            f"--ckpt_path last: no checkpoint matches {folder / pattern}; pass --ckpt_path PATH to resume "
            "from a checkpoint elsewhere, or leave --ckpt_path out to start a new run"
        )
    return found[-1]


class SSLLightningCLI(LightningCLI):
    """LightningCLI with the library's defaults: a configurable `checkpoint` and seeded runs."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})

    def before_fit(self) -> None:
        """Resolve `--ckpt_path last` to the previous run's checkpoint (`find_last_checkpoint`), named;
        refuse SyncBatchNorm under DDP off GPUs here, not with PyTorch's error when DDP wraps the model
        (one process on a CPU runs it as BatchNorm)."""
        config = self.config_init[self.subcommand]
        device = self.trainer.strategy.root_device.type
        if (
            config.trainer.sync_batchnorm
            and isinstance(self.trainer.strategy, DDPStrategy)
            and device != "cuda"
        ):
            raise ValueError(
                f"trainer.sync_batchnorm is true but DDP runs on {device}; SyncBatchNorm only works on GPUs "
                "under DDP: pass --trainer.sync_batchnorm false"
            )
        if config.get("ckpt_path") == "last":
            config.ckpt_path = str(find_last_checkpoint(self.trainer))
            print(f"--ckpt_path last: resuming from {config.ckpt_path}", file=sys.stderr)


class _HelpFormatter(RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with the epilog kept as written."""


def run_lightning_cli(args: Sequence[str] | None = None, epilog: str = "") -> None:
    """Run one LightningCLI subcommand; `args` None reads `sys.argv` (LightningCLI's own behaviour).
    A fit stopped by SIGTERM (after `CheckpointGuard` saved `last.ckpt`) exits with `SIGTERM_EXIT`.
    Given `args` (a subcommand such as beats-loop runs fits), `sys.argv` is hidden meanwhile: it holds the
    calling subcommand's arguments, which LightningCLI would warn about."""
    argv = sys.argv
    if args is not None:
        sys.argv = argv[:1]
    try:
        _run(args, epilog)
    except SIGTERMException as stop:
        raise SystemExit(SIGTERM_EXIT) from stop
    finally:
        sys.argv = argv


def _run(args: Sequence[str] | None, epilog: str) -> None:
    SSLLightningCLI(
        model_class=SSLMethod,
        subclass_mode_model=True,
        datamodule_class=L.LightningDataModule,
        subclass_mode_data=True,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "epilog": epilog,
            "description": "ssl_lightning: self-supervised learning recipes",
            "formatter_class": _HelpFormatter,
        },
        args=None if args is None else list(args),
    )
