"""A test-only callback that signals its own process at a chosen point of a ``fit``.

Used by ``test_fault_injection.py`` through ``--trainer.callbacks+=helpers.fault_injection.InjectFault``
with ``tests/`` on PYTHONPATH. ``$PSPIKESSM_FAULT`` is ``SIGNAL:POINT:STEP[:RANK]`` (RANK: only
that process signals itself; default: every process):

- ``train``: during the backward pass of the training step that starts at global step STEP;
- ``load``: while the training batch after global step STEP is being collated;
- ``val``: after the second batch of the validation at global step STEP;
- ``sanity``: during the sanity check (STEP is ignored);
- ``setup``: in the trainer's ``setup`` (STEP is ignored), before training starts;
- ``repeat``: during the training step at global step STEP, and again once the stop that
  follows has restored the signal handlers (a scheduler that repeats the signal);
- ``save``: inside the write of ``last.ckpt`` at global step STEP, after its data is in the
  temporary file and before that file replaces the checkpoint;
- ``shutdown``: during the training step at global step STEP, then again every 20 ms from
  when the stop that follows has saved ``last.ckpt`` until the process is gone, through the
  interpreter's exit (a line in ``shutdown-signals`` in the run folder for each).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback

import pspikessm.files


def signal_until_gone(signum: signal.Signals, record: Path) -> None:
    """Start a shell that sends ``signum`` to this process every 20 ms until it is gone (at most
    500 times), adding a line to ``record`` for each signal sent."""
    number = int(signum)
    loop = (
        'i=0; while [ "$i" -lt 500 ] && kill -' + str(number) + ' "$0" 2>/dev/null; '
        'do echo sent >> "$1"; i=$((i+1)); sleep 0.02; done'
    )
    subprocess.Popen(["sh", "-c", loop, str(os.getpid()), str(record)], start_new_session=True)


class InjectFault(Callback):
    def __init__(self) -> None:
        name, self.point, step, *rank = os.environ["PSPIKESSM_FAULT"].split(":")
        self.signum, self.step = signal.Signals[name], int(step)
        self.rank = int(rank[0]) if rank else None
        self.sent = False
        self.trainer: L.Trainer | None = None

    def _send(self) -> None:
        if self.rank is not None and self.trainer.global_rank != self.rank:
            return
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.trainer = trainer
        if self.point == "setup":
            self._send()
        if self.point == "repeat":
            restore = trainer._signal_connector.teardown  # Lightning 2.6.6: puts handlers back

            def restore_then_signal() -> None:
                restore()
                if self.sent:
                    os.kill(os.getpid(), self.signum)

            trainer._signal_connector.teardown = restore_then_signal
        data = trainer.datamodule
        if self.point != "load" or data is None:
            return
        collate = data.collate_fn

        def collate_and_signal(items):
            if trainer.training and trainer.global_step == self.step:
                self._send()
            return collate(items)

        data.collate_fn = collate_and_signal  # read when the loaders are built, after setup

    def on_before_backward(self, trainer: L.Trainer, pl_module, loss) -> None:
        if self.point in ("train", "repeat", "shutdown") and trainer.global_step == self.step:
            self._send()

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx=0
    ) -> None:
        at_step = trainer.global_step == self.step and not trainer.sanity_checking
        if (self.point == "val" and at_step and batch_idx == 1) or (
            self.point == "sanity" and trainer.sanity_checking
        ):
            self._send()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module, checkpoint) -> None:
        if self.point != "save" or trainer.global_step != self.step or self.sent:
            return
        fsync = os.fsync

        def signal_then_fsync(descriptor: int) -> None:
            if ".last.ckpt." in os.readlink(f"/proc/self/fd/{descriptor}"):  # its temporary file
                os.fsync = fsync
                self._send()
            fsync(descriptor)

        os.fsync = signal_then_fsync
        assert pspikessm.files.os is os  # the writer calls this os.fsync

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if self.point == "shutdown" and self.sent:  # the stop, after last.ckpt was saved
            signal_until_gone(self.signum, Path(trainer.log_dir) / "shutdown-signals")
