"""Command-line entry point (`ssl-lightning` and `lightning`): LightningCLI plus extra subcommands.

    lightning fit --config recipes/supervised_hares_mini.yaml            # also validate/test/predict
    ssl-lightning evaluate --suite hares-mini --ckpt runs/.../last.ckpt  # frozen-feature probes
    ssl-lightning beats-quickstart                                       # tiny BEATs loop + probe table

Every run is seeded (seed 0 unless `--seed_everything` says otherwise), logs to TensorBoard and
CSV under `runs/`, shows a progress bar, saves `last.ckpt`, and stops with a clear error on a
non-finite loss.
"""

from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter
from collections.abc import Callable, Sequence

import lightning as L
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

import ssl_lightning.data  # noqa: F401  (registers datamodules for short class names)
import ssl_lightning.eval.callback  # noqa: F401  (registers evaluation callbacks)
from ssl_lightning.callbacks import FiniteLossGuard
from ssl_lightning.methods import SSLMethod


def _evaluate(args: Sequence[str]) -> None:
    from ssl_lightning.eval.evaluate import main

    main(args)


def _beats_loop(args: Sequence[str]) -> None:
    from ssl_lightning.beats_loop import main

    main(args)


def _beats_quickstart(args: Sequence[str]) -> None:
    from ssl_lightning.quickstart import main

    main(args)


def _shard_audio(args: Sequence[str]) -> None:
    from ssl_lightning.data.sharding import main

    main(args)


EXTRA_COMMANDS: dict[str, tuple[Callable[[Sequence[str]], None], str]] = {
    "evaluate": (_evaluate, "frozen-feature probe evaluation of checkpoints and baselines on a suite"),
    "beats-loop": (_beats_loop, "run the BEATs stages (iter1, tokenizer, iter2, ...) into one run directory"),
    "beats-quickstart": (
        _beats_quickstart,
        "the BEATs loop at tiny scale on CPU, then a random-init/iter1/iter2 table",
    ),
    "shard-audio": (_shard_audio, "decode audio files into LitData shards for StreamingAudioDataModule"),
}

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
    """jsonargparse's help, with the epilog's table of extra subcommands kept as written."""


def _epilog() -> str:
    lines = ["additional subcommands (ssl-lightning <subcommand> --help):"]
    lines += [f"  {name:<16} {text}" for name, (_, text) in EXTRA_COMMANDS.items()]
    return "\n".join(lines)


def main(args: Sequence[str] | None = None) -> None:
    """Dispatch to an extra subcommand or to LightningCLI (fit/validate/test/predict)."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in EXTRA_COMMANDS:
        EXTRA_COMMANDS[argv[0]][0](argv[1:])
        return
    SSLLightningCLI(
        model_class=SSLMethod,
        subclass_mode_model=True,
        datamodule_class=L.LightningDataModule,
        subclass_mode_data=True,
        trainer_defaults=TRAINER_DEFAULTS,
        seed_everything_default=0,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={
            "epilog": _epilog(),
            "description": "ssl_lightning: self-supervised learning recipes",
            "formatter_class": _HelpFormatter,
        },
        args=None if args is None else argv,  # None: LightningCLI reads sys.argv itself
    )


if __name__ == "__main__":
    main()
