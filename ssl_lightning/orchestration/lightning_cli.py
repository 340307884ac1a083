"""The library's LightningCLI: `fit`/`validate`/`test`/`predict` of any method and datamodule from
YAML recipes, with the defaults every run gets (seed 0, TensorBoard + CSV logs under `runs/`, a
configurable `checkpoint` with `last.ckpt`, a clear stop on a non-finite loss)."""

from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter
from collections.abc import Sequence

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import ssl_lightning.data  # noqa: F401  (registers datamodules for short class names)
import ssl_lightning.eval.callback  # noqa: F401  (registers evaluation callbacks)
from ssl_lightning.callbacks import FiniteLossGuard
from ssl_lightning.methods import SSLMethod

TRAINER_DEFAULTS = {
    "logger": [
        {
            "class_path": "lightning.pytorch.loggers.TensorBoardLogger",
            "init_args": {"save_dir": "runs", "name": ""},
        },
        {
            "class_path": "lightning.pytorch.loggers.CSVLogger",
            "init_args": {"save_dir": "runs", "name": "csv"},
        },
    ],
    "callbacks": [FiniteLossGuard()],
}


class SSLLightningCLI(LightningCLI):
    """LightningCLI with the library's defaults: a configurable `checkpoint` and seeded runs."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True})


class _HelpFormatter(RawDescriptionHelpFormatter, DefaultHelpFormatter):
    """jsonargparse's help, with the epilog kept as written."""


def run_lightning_cli(args: Sequence[str] | None = None, epilog: str = "") -> None:
    """Run one LightningCLI subcommand; `args` None reads `sys.argv` (LightningCLI's own behaviour).
    Given `args` (a subcommand such as beats-loop runs fits), `sys.argv` is hidden meanwhile: it holds the
    calling subcommand's arguments, which LightningCLI would warn about."""
    argv = sys.argv
    if args is not None:
        sys.argv = argv[:1]
    try:
        _run(args, epilog)
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
