"""`ProbeEvaluation`: run a suite's linear probes on the method being trained.

Add it to a recipe's `trainer.callbacks`; it probes at the end of `fit` (and every
`every_n_epochs` epochs when set), logs `probe/<task>` to the trainer's loggers and writes the
report under the run's log directory. Features are extracted on global rank 0 only (suites here
are small); other ranks wait at the barrier.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from ssl_lightning.eval.evaluate import SuiteRunner
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.eval.report import format_table, write_report
from ssl_lightning.eval.suites import get_suite
from ssl_lightning.methods.base import SSLMethod


class ProbeEvaluation(L.Callback):
    """Linear-probe evaluation of the fitted method on a suite.

    Args:
        suite: suite name (`hares-mini`).
        tasks: subset of tasks (all by default).
        every_n_epochs: also probe after every n-th training epoch (None: at the end of fit only).
        probe: probe settings.
        data_root: the suite's data root (library default when None).
        batch_size: feature-extraction batch size.
    """

    def __init__(
        self,
        suite: str = "hares-mini",
        tasks: list[str] | None = None,
        every_n_epochs: int | None = None,
        probe: ProbeConfig | None = None,
        data_root: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.suite, self.tasks, self.every_n_epochs = suite, tasks, every_n_epochs
        self.probe, self.data_root, self.batch_size = probe or ProbeConfig(), data_root, batch_size
        get_suite(suite).select(tasks)  # fail at start-up, not after training, on a bad name

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        if not isinstance(pl_module, SSLMethod):
            raise TypeError(f"ProbeEvaluation needs an SSLMethod, got {type(pl_module).__name__}")
        if trainer.is_global_zero:
            runner = SuiteRunner(
                get_suite(self.suite),
                self.tasks,
                self.probe,
                self.data_root,
                self.batch_size,
                device=str(pl_module.device),
                progress=False,
            )
            was_training = pl_module.training
            results = runner.probe_model(tag, pl_module)
            pl_module.train(was_training)
            for logger in trainer.loggers:
                logger.log_metrics({f"probe/{r.task}": r.value for r in results}, step=trainer.global_step)
            out = Path(trainer.log_dir or trainer.default_root_dir) / "probe" / tag
            write_report(results, out, title=f"{self.suite} probe ({tag})")
            print(format_table(results))
        trainer.strategy.barrier("probe_evaluation")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and not trainer.sanity_checking:
            self._run(trainer, pl_module, f"epoch{epoch}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module, "final")
