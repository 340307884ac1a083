"""`ProbeEvaluation` and `HaresSuite`: run a suite's linear probes on the method being trained.

Add one to a recipe's `trainer.callbacks`; it probes at the end of `fit` (and every `every_n_epochs`
epochs when set), logs `probe/<task>` to the trainer's loggers and writes the report (tables, one JSON
per task, bar chart) under the run's log directory. Features are extracted on global rank 0 only; other
ranks wait at the barrier. Nothing is kept in the checkpoint: a resumed fit probes at the same epochs.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L

from ssl_lightning.eval.evaluate import SuiteRunner, check_paper_models, write_outputs
from ssl_lightning.eval.hares import HARES_DATA
from ssl_lightning.eval.probe import ProbeConfig
from ssl_lightning.eval.registry import get_suite
from ssl_lightning.eval.suite_report import format_suite_table
from ssl_lightning.methods.base import SSLMethod


class ProbeEvaluation(L.Callback):
    """Linear-probe evaluation of the fitted method on a suite.

    Args:
        suite: suite name (`hares-mini`).
        tasks: subset of tasks (all by default).
        every_n_epochs: also probe after every n-th training epoch (None: at the end of fit only).
        probe: probe settings (None: the suite's protocol, else `ProbeConfig()`).
        data_root: the suite's data root (library default when None).
        batch_size: feature-extraction batch size.
        protocol: `cached` features or fresh `random_crop`s for the heads' training (see `evaluate`).
        paper_models: published models shown beside the results (the suite's default when None).
    """

    def __init__(
        self,
        suite: str = "hares-mini",
        tasks: list[str] | None = None,
        every_n_epochs: int | None = None,
        probe: ProbeConfig | None = None,
        data_root: str | None = None,
        batch_size: int = 64,
        protocol: str = "cached",
        paper_models: list[str] | None = None,
    ) -> None:
        self.suite, self.tasks, self.every_n_epochs = suite, tasks, every_n_epochs
        self.probe, self.data_root, self.batch_size = probe, data_root, batch_size
        self.protocol = protocol
        # fail at start-up, not after training, on a bad name
        self.paper_models = check_paper_models(get_suite(suite, data_root), paper_models)
        get_suite(suite, data_root).select(tasks)

    def _run(self, trainer: L.Trainer, pl_module: L.LightningModule, tag: str) -> None:
        if not isinstance(pl_module, SSLMethod):
            raise TypeError(f"ProbeEvaluation needs an SSLMethod, got {type(pl_module).__name__}")
        # every rank reads log_dir: Lightning broadcasts it, and a broadcast on rank 0 alone would deadlock
        out = Path(trainer.log_dir or trainer.default_root_dir) / "probe" / tag
        if trainer.is_global_zero:
            runner = SuiteRunner(
                get_suite(self.suite, self.data_root),
                self.tasks,
                self.probe,
                self.data_root,
                self.batch_size,
                device=str(pl_module.device),
                progress=False,
                protocol=self.protocol,
            )
            was_training = pl_module.training
            results = runner.probe_model(tag, pl_module)
            pl_module.train(was_training)
            for logger in trainer.loggers:
                logger.log_metrics({f"probe/{r.task}": r.value for r in results}, step=trainer.global_step)
            table = format_suite_table(results, runner.suite, self.paper_models)
            print(table)
            title = f"{self.suite} probe ({tag}, {self.protocol} features)"
            write_outputs(results, out, title, table, {}, lambda: runner.write_splits(out / "splits"))
        trainer.strategy.barrier("probe_evaluation")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every_n_epochs and epoch % self.every_n_epochs == 0 and not trainer.sanity_checking:
            self._run(trainer, pl_module, f"epoch{epoch}")

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run(trainer, pl_module, "final")


class HaresSuite(ProbeEvaluation):
    """The HARES suite's probes (`ssl_lightning.eval.hares`) on the method being trained: the chosen tasks
    every `every_n_epochs` epochs and at the end of fit, read from their folders under `data_root`.

    Args:
        data_root: the folder holding each data set's folder (see `ssl_lightning.eval.hares.HARES_DATA`).
        tasks: subset of the 12 tasks (all by default).
        every_n_epochs, probe, batch_size, protocol, paper_models: as `ProbeEvaluation`.
    """

    def __init__(
        self,
        data_root: str,
        tasks: list[str] | None = None,
        every_n_epochs: int | None = None,
        probe: ProbeConfig | None = None,
        batch_size: int = 64,
        protocol: str = "cached",
        paper_models: list[str] | None = None,
    ) -> None:
        if not Path(data_root).expanduser().is_dir():
            raise FileNotFoundError(
                f"HaresSuite data_root {data_root!r} is not a folder; pass the folder holding the HARES data "
                "sets' folders (docs/hares.md)"
            )
        super().__init__("hares", tasks, every_n_epochs, probe, data_root, batch_size, protocol, paper_models)
        missing = {
            task.name: HARES_DATA[task.name].folder
            for task in get_suite("hares").select(tasks)
            if not (Path(data_root).expanduser() / HARES_DATA[task.name].folder).is_dir()
        }
        if missing:  # found now, not after the first epoch of training
            raise FileNotFoundError(
                f"HaresSuite: data_root {data_root!r} lacks the folder(s) of task(s) {missing}; add them "
                "(see docs/hares.md) or leave the tasks out with tasks="
            )
