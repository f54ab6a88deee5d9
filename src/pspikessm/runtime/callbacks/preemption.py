"""Write ``last.ckpt`` and stop with exit code 75 when the job is told to go (SIGTERM, SIGUSR1)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from pspikessm.runtime.exit_status import PREEMPTED_EXIT_CODE


class StopOnSignal:
    """The process-wide SIGTERM handler outside training.

    Installed for the whole command (``main``): a SIGTERM during start-up, ``setup`` or the
    sanity check stops the command with :data:`PREEMPTED_EXIT_CODE` (raised as Lightning's
    ``SIGTERMException``) instead of killing it (status 143). Once the run is stopping for a
    signal (here, or :class:`PreemptionCheckpoint` has saved), a repeated SIGTERM is only
    noted: schedulers repeat it, and the stop in progress finishes with the same status.
    SIGUSR1 is left alone outside training: Lightning installs its SLURM requeue handler only
    where SIGUSR1 has none.
    """

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            rank_zero_info(f"{signal.Signals(signum).name} again: already stopping")
            return
        self.stopping = True
        rank_zero_info(
            f"Stopping on {signal.Signals(signum).name} outside training (start-up, set-up, "
            f"sanity check): nothing saved; exit status {PREEMPTED_EXIT_CODE}."
        )
        raise SIGTERMException(PREEMPTED_EXIT_CODE)


#: The handler ``main`` installs (None when the command runs without it, as in tests).
STOP_ON_SIGNAL: StopOnSignal | None = None


def install_stop_on_signal() -> StopOnSignal:
    """Install a new :class:`StopOnSignal` for SIGTERM (call it from the main thread)."""
    global STOP_ON_SIGNAL
    STOP_ON_SIGNAL = StopOnSignal()
    signal.signal(signal.SIGTERM, STOP_ON_SIGNAL)
    return STOP_ON_SIGNAL


class PreemptionCheckpoint(Callback):
    """On SIGTERM or SIGUSR1 during ``fit``: save a resumable ``last.ckpt``, exit with 75.

    Schedulers announce preemption and time limits with a signal (SLURM: ``--signal=USR1@120``
    then SIGTERM; Kubernetes and most clouds: SIGTERM). The handler only records the signal;
    the run stops at the next point where its state can be resumed exactly, and all processes
    agree on it first (a scalar all-reduce per step under DDP):

    - after the training step in progress: the checkpoint holds that step (the training
      loader's place in the epoch included, see :mod:`pspikessm.data.resumable`); the run
      stops at the next hook, once Lightning has logged the step;
    - when a validation is due after that step, or is running: the checkpoint holds the
      state before it, marked so that the resumed run first runs that validation in full.

    It stops by raising Lightning's ``SIGTERMException`` with :data:`PREEMPTED_EXIT_CODE`, so
    a job supervisor sees an unfinished run. A signal before training starts (during set-up
    or the sanity check) stops the run without writing anything: the previous checkpoint
    stays the newest.

    Lightning's own SIGTERM handler is replaced while training (it would stop inside the
    loops, where a checkpoint cannot be resumed exactly); handlers installed before the
    trainer started are still called, and so are other signals' handlers: under SLURM with
    auto-requeue, Lightning's SIGUSR1 handler still requeues the job.

    Args:
        signals: names of the signals that trigger the checkpoint.
    """

    def __init__(self, signals: list[str] | None = None) -> None:
        names = ["SIGTERM", "SIGUSR1"] if signals is None else signals
        unknown = [name for name in names if not hasattr(signal, name)]
        if unknown:
            raise ValueError(f"preemption.signals: unknown signal names {unknown}")
        self.signals = [signal.Signals[name] for name in names]
        self.received: signal.Signals | None = None
        self._stopping = self._saved = False
        self._before_trainer: dict[signal.Signals, Any] = {}
        self._chained: dict[signal.Signals, Any] = {}
        self._replaced: dict[signal.Signals, Any] = {}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Runs before the trainer installs its own handlers.
        self._before_trainer = {signum: signal.getsignal(signum) for signum in self.signals}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received = signal.SIGTERM if trainer.received_sigterm else None
        self._stopping = self._saved = False
        for signum in self.signals:
            current = signal.getsignal(signum)
            chained = self._before_trainer.get(signum) if signum == signal.SIGTERM else current
            # The command's own stop-at-once handler is for outside training only.
            self._chained[signum] = None if isinstance(chained, StopOnSignal) else chained
            try:
                signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals to whoever owns them
                return
            self._replaced[signum] = current

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)
        chained = self._chained.get(self.received)
        if callable(chained):
            chained(signum, frame)

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        # Saved here, stopped at the next hook: Lightning logs this step's metrics in between.
        if not self._saved and self._agreed(trainer) and not validation_follows(trainer):
            self._save(trainer)

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if self._saved:
            self._stop()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._saved:
            self._stop()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.on_validation_batch_end(trainer)

    def on_validation_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not self._fitting(trainer) or not (self._saved or self._agreed(trainer)):
            return
        if not self._saved:
            self._save(trainer, validation_pending=True)
        self._stop()

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # What was logged up to a checkpoint is on disk with it: a run resumed from it after
        # a SIGKILL has every earlier metric in its event files.
        for logger in trainer.loggers:
            logger.save()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        self._restore_handlers()

    @staticmethod
    def _fitting(trainer: L.Trainer) -> bool:
        return trainer.state.fn == "fit" and not trainer.sanity_checking

    def _agreed(self, trainer: L.Trainer) -> bool:
        """Whether to stop now: a signal arrived here or (under DDP) in any process."""
        if not self._stopping:
            stop = self.received is not None
            if trainer.world_size > 1:
                stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
            self._stopping = stop
        return self._stopping

    def _save(self, trainer: L.Trainer, validation_pending: bool = False) -> None:
        if validation_pending:
            mark_validation_not_run(trainer)
        path = self.last_checkpoint_path(trainer)
        trainer.save_checkpoint(path, weights_only=False)  # the whole training state
        self._saved = True
        if STOP_ON_SIGNAL is not None:  # a repeated signal must not cut the stop short
            STOP_ON_SIGNAL.stopping = True
        name = self.received.name if self.received is not None else "a signal in another process"
        rank_zero_info(
            f"Stopping on {name}: saved {path} at global step {trainer.global_step}"
            f"{' (the validation in progress runs again on resume)' if validation_pending else ''}"
            f"; stopping with exit status {PREEMPTED_EXIT_CODE}. Continue with "
            "`pspikessm fit <same options> --ckpt_path last`."
        )

    def _stop(self) -> None:
        raise SIGTERMException(PREEMPTED_EXIT_CODE)

    def _restore_handlers(self) -> None:
        for signum, previous in self._replaced.items():
            signal.signal(signum, previous)
        self._replaced = {}

    @staticmethod
    def last_checkpoint_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` in the first ModelCheckpoint's folder (where ``--ckpt_path last`` looks)."""
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                name = callback.CHECKPOINT_NAME_LAST + callback.FILE_EXTENSION
                return Path(callback.dirpath) / name
        return Path(trainer.default_root_dir) / "checkpoints" / "last.ckpt"


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether ``fit`` validates right after the training batch that just ended.

    Lightning's rule for batch-based validation (``val_check_interval``,
    ``check_val_every_n_epoch``); a time-based ``val_check_interval`` counts as no.
    """
    if not trainer.enable_validation:
        return False
    every = trainer.check_val_every_n_epoch
    if every is not None and (trainer.current_epoch + 1) % every:
        return False
    # Lightning internals (fit_loop.epoch_loop, val_check_batch), checked with Lightning 2.6.6.
    loop = trainer.fit_loop.epoch_loop
    interval = trainer.val_check_batch
    if interval is None:
        return False
    if interval == float("inf"):
        return loop.batch_progress.is_last_batch
    index = loop.total_batch_idx if every is None else loop.batch_idx
    return (index + 1) % interval == 0


def mark_validation_not_run(trainer: L.Trainer) -> None:
    """Set the validation loop's progress to "started, no batch done" before a checkpoint.

    A ``fit`` resumed from such a checkpoint runs that validation again from its first batch
    (Lightning's restart of an interrupted evaluation), instead of skipping it or finishing
    only its remaining batches with half the metric state.
    """
    # Lightning internals (the validation loop's batch_progress), checked with Lightning 2.6.6.
    progress = trainer.fit_loop.epoch_loop.val_loop.batch_progress
    earlier = progress.total.completed - progress.current.completed  # this epoch's earlier runs
    state = progress.state_dict()
    state["current"] = {"ready": 1, "started": 1, "processed": 0, "completed": 0}
    state["total"] = {
        "ready": earlier + 1,
        "started": earlier + 1,
        "processed": earlier,
        "completed": earlier,
    }
    state["is_last_batch"] = False
    progress.load_state_dict(state)
