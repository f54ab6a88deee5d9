"""Write ``last.ckpt`` and stop when the job is told to go (SIGTERM, SIGUSR1)."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info


class PreemptionCheckpoint(Callback):
    """On SIGTERM or SIGUSR1: finish the current step, save ``last.ckpt``, exit.

    Schedulers announce preemption and time limits with a signal (SLURM: ``--signal=USR1@120``
    then SIGTERM; Kubernetes and most clouds: SIGTERM). The handler only records the signal;
    after the running training step, all processes agree (one scalar all-reduce per step under
    DDP), write ``last.ckpt`` into the ModelCheckpoint folder, and stop with Lightning's
    ``SIGTERMException``. ``fit --ckpt_path last`` continues from there in the same run folder.

    Handlers already installed are kept and called too: under SLURM with auto-requeue,
    Lightning's SIGUSR1 handler still saves its ``hpc_ckpt`` and requeues the job.

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
        self._previous: dict[signal.Signals, object] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning's own handlers are in place, so they are chained, not replaced.
        self.received = None
        for signum in self.signals:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: leave signals to whoever owns them
                return

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)
        previous = self._previous.get(self.received)
        if callable(previous):
            previous(signum, frame)

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        stop = self.received is not None
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if not stop:
            return
        path = self.last_checkpoint_path(trainer)
        trainer.save_checkpoint(path)
        rank_zero_info(
            f"Received {self.received!r}: saved {path} and stopping; resume with "
            "`fit --ckpt_path last`."
        )
        raise SIGTERMException()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handlers()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    @staticmethod
    def last_checkpoint_path(trainer: L.Trainer) -> Path:
        """``last.ckpt`` in the first ModelCheckpoint's folder (where ``--ckpt_path last`` looks)."""
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.dirpath:
                name = callback.CHECKPOINT_NAME_LAST + callback.FILE_EXTENSION
                return Path(callback.dirpath) / name
        return Path(trainer.default_root_dir) / "last.ckpt"
