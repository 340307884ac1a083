"""Command-line entry point (`ssl-lightning` and `lightning`): LightningCLI plus extra subcommands.

    lightning fit --config recipes/supervised_hares_mini.yaml            # also validate/test/predict
    ssl-lightning evaluate --suite hares-mini --ckpt runs/.../last.ckpt  # frozen-feature probes
    ssl-lightning beats-quickstart                                       # tiny BEATs loop + probe table

Every run is seeded (seed 0 unless `--seed_everything` says otherwise), logs to TensorBoard and
CSV under `runs/`, shows a progress bar, saves `last.ckpt`, and stops with a clear error on a
non-finite loss. This module only dispatches: each subcommand is imported when it is run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _evaluate(args: Sequence[str]) -> None:
    from ssl_lightning.eval.evaluate import main

    main(args)


def _beats_loop(args: Sequence[str]) -> None:
    from ssl_lightning.orchestration.beats_loop import main

    main(args)


def _beats_quickstart(args: Sequence[str]) -> None:
    from ssl_lightning.orchestration.quickstart import main

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
    from ssl_lightning.orchestration.lightning_cli import run_lightning_cli

    run_lightning_cli(None if args is None else argv, epilog=_epilog())  # None: LightningCLI reads sys.argv


if __name__ == "__main__":
    main()
