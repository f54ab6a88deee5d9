"""RunSummary: how a run went, in TensorBoard's HPARAMS tab and in one short summary at the end."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

import lightning as L
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from pspikessm.callbacks.hparams_table import (
    COMPARED,
    HP_METRIC,
    takes_over_hparams,
    write_hparams,
)
from pspikessm.callbacks.run_status import command_line, read_status, status_of, update_status
from pspikessm.callbacks.spike_sources import layer_of
from pspikessm.callbacks.tensorboard import tensorboard_writer

SUMMARY_TAG = "run/summary"
_VAL_RATE = re.compile(r"^sparsity/val/(.+)/rate$")
_VAL_SILENT = re.compile(r"^sparsity/val/(.+)/silent$")
#: A spike site that ends a run with more silent neurons than this is named in a warning.
SILENT_WARNING = 0.2


class RunSummary(L.Callback):
    """TensorBoard's HPARAMS tab that compares runs, and a summary printed at the end of ``fit``.

    With a TensorBoardLogger, the HPARAMS entry of the run is written here instead of by
    Lightning (:mod:`~pspikessm.callbacks.hparams_table`): the columns ``hparams`` (task, lr,
    weight decay, width, layers, state size, kernel, neuron, branches, dropout, batch size,
    seed, precision by default) and the metrics ``hp_metric``, best val/acc, test/acc, mean
    firing rate and energy ratio. This callback gives ``hp_metric`` its meaning:

    - during ``fit``, after every validation epoch: the best value of ``monitor`` so far;
    - after ``test``: the value of ``test_metric``.

    At the end of ``fit`` (rank zero) it prints, after a progress bar listed before it has
    finished, and writes as the TensorBoard text ``run/summary``: the best ``monitor`` value
    and its epoch (0-based, as in checkpoint names), the firing rate of every spike source at
    the last validation epoch grouped by layer (``sparsity/val/S/rate``, when a
    FiringRateMonitor ran), a warning naming every spike site that ends with more than
    :data:`SILENT_WARNING` of its neurons silent, the time ``fit`` took in this process, the
    run folder, and the best and last checkpoint paths.

    The best value and its epoch are saved in checkpoints, so a resumed run continues them.
    How the run went (running, finished, preempted, failed; time, steps, best and test
    values) is kept in the run folder's ``summary.json``
    (:mod:`~pspikessm.callbacks.run_status`), which ``pspikessm report`` reads.

    Args:
        monitor: validation metric whose best value is ``hp_metric`` during fit.
        mode: ``max`` or ``min``: which values of ``monitor`` are better.
        test_metric: metric that becomes ``hp_metric`` after test.
        hparams: the HPARAMS columns (:data:`~pspikessm.callbacks.hparams_table.COMPARED`
            by default); a name is looked up in the model's and data module's arguments.
    """

    def __init__(
        self,
        monitor: str = "val/acc",
        mode: Literal["max", "min"] = "max",
        test_metric: str = "test/acc",
        hparams: list[str] | None = None,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"RunSummary(mode={mode!r}): expected 'max' or 'min'")
        self.monitor = monitor
        self.mode = mode
        self.test_metric = test_metric
        self.hparams = list(COMPARED if hparams is None else hparams)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._started = 0.0
        self._lines: list[str] = []
        self._run_dir: str | None = None  # set while an attempt trains, for summary.json
        self._seconds_before = 0.0

    # --- state in checkpoints ---------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = state_dict.get("best")
        self.best_epoch = state_dict.get("best_epoch")

    # --- hp_metric --------------------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # When Lightning would log the hyperparameters (its _log_hyperparams, after setup).
        autolog = getattr(
            trainer, "enable_autolog_hparams", True
        )  # Trainer(enable_autolog_hparams)
        if autolog and takes_over_hparams(trainer, pl_module):
            write_hparams(trainer, pl_module, self.hparams)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.monotonic()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            return
        value = float(value)
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_epoch = value, trainer.current_epoch
        _log_hp_metric(trainer, self.best)

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = trainer.callback_metrics.get(self.test_metric)
        if value is not None:
            _log_hp_metric(trainer, float(value))
        run_dir = trainer.log_dir if trainer.loggers else None  # collective under DDP
        if run_dir is not None and trainer.is_global_zero:
            tested = {
                tag: float(value)
                for tag, value in trainer.callback_metrics.items()
                if tag.startswith("test/") or tag == "energy/saving"
            }
            update_status(Path(run_dir), test=tested)

    # --- summary.json -----------------------------------------------------------------------

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._run_dir = trainer.log_dir if trainer.loggers else None  # collective under DDP
        if self._run_dir is None or not trainer.is_global_zero:
            return
        previous = read_status(Path(self._run_dir))
        self._seconds_before = float(previous.get("seconds", 0.0))
        update_status(
            Path(self._run_dir),
            status="running",
            task=trainer.logger.name,
            command=command_line(),
            attempts=int(previous.get("attempts", 0)) + 1,
        )

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        error = f"{type(exception).__name__}: {exception}".splitlines()[0]
        status = status_of(exception)
        self._record_end(trainer, status, **({"error": error} if status == "failed" else {}))

    def _record_end(self, trainer: L.Trainer, status: str, **fields: Any) -> None:
        """The end of a training attempt into summary.json (once, rank zero)."""
        run_dir, self._run_dir = self._run_dir, None
        if run_dir is None or not trainer.is_global_zero:
            return
        best = {"metric": self.monitor, "value": self.best, "epoch": self.best_epoch}
        update_status(
            Path(run_dir),
            status=status,
            seconds=round(self._seconds_before + time.monotonic() - self._started, 1),
            global_step=trainer.global_step,
            epoch=trainer.current_epoch,
            best=best,
            **fields,
        )

    # --- the summary ------------------------------------------------------------------------

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        run_folder = trainer.log_dir if trainer.loggers else None  # collective under DDP
        self._lines = self.summary_lines(trainer, run_folder, time.monotonic() - self._started)
        _write_text(trainer, self._lines)
        self._record_end(trainer, "finished")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Printed here, after a progress bar listed earlier has stopped drawing (its own
        # teardown), so that the summary is the last thing the run prints.
        if stage == "fit" and self._lines:
            _print(self._lines)
        self._lines = []

    def summary_lines(
        self, trainer: L.Trainer, run_folder: str | None, seconds: float
    ) -> list[str]:
        """The summary, one ``label: value`` line each."""
        if self.best is None:
            best = f"best {self.monitor}: none (no validation ran)"
        else:
            best = f"best {self.monitor}: {self.best:.4f} at epoch {self.best_epoch}"
        lines = [best]
        rates = firing_rates_by_layer(trainer.callback_metrics)
        if rates:
            lines.append("firing rate (val, last epoch): " + rates)
        lines += silent_site_warnings(trainer.callback_metrics)
        lines.append(
            f"time: {format_duration(seconds)} in this process; epochs trained: "
            f"{trainer.current_epoch}"
        )
        lines.append(f"run folder: {run_folder or 'none (no logger)'}")
        checkpoint = trainer.checkpoint_callback
        if checkpoint is not None:
            lines.append(f"best checkpoint: {checkpoint.best_model_path or 'none'}")
            lines.append(f"last checkpoint: {checkpoint.last_model_path or 'none'}")
        return lines


def firing_rates_by_layer(metrics: dict[str, Any]) -> str:
    """``layer0: input 0.318, output 0.111; layer1: ...`` from the ``sparsity/val/S/rate``
    values among ``metrics``, in the order they were logged; empty when there are none."""
    layers: dict[str, list[str]] = defaultdict(list)
    for tag, value in metrics.items():
        match = _VAL_RATE.match(tag)
        if match:
            source = match.group(1)
            layer = layer_of(source)
            layers[layer].append(f"{source.removeprefix(layer + '/')} {float(value):.3f}")
    return "; ".join(f"{layer}: {', '.join(rates)}" for layer, rates in layers.items())


def silent_site_warnings(metrics: dict[str, Any]) -> list[str]:
    """One ``warning: ...`` line per spike site whose ``sparsity/val/S/silent`` fraction among
    ``metrics`` exceeds :data:`SILENT_WARNING`."""
    lines = []
    for tag, value in metrics.items():
        match = _VAL_SILENT.match(tag)
        if match and round(float(value), 6) > SILENT_WARNING:  # a float32 0.2 is not above
            lines.append(
                f"warning: {match.group(1)} ends with {float(value):.0%} of its neurons silent "
                "(val, last epoch): they no longer learn; see docs/ablations.md, "
                '"Keep every spiking neuron alive"'
            )
    return lines


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``2 h 03 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@rank_zero_only
def _log_hp_metric(trainer: L.Trainer, value: float) -> None:
    for logger in trainer.loggers:
        logger.log_metrics({HP_METRIC: value}, step=trainer.global_step)


@rank_zero_only
def _print(lines: list[str]) -> None:
    print("\nRun summary\n" + "\n".join(f"  {line}" for line in lines), flush=True)


@rank_zero_only
def _write_text(trainer: L.Trainer, lines: list[str]) -> None:
    writer = tensorboard_writer(trainer)
    if writer is not None:
        text = "\n".join(f"- {line}" for line in lines)
        writer.add_text(SUMMARY_TAG, text, trainer.global_step)
