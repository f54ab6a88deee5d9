"""Console output that suits where it goes: a live bar on a terminal, plain lines in a job log.

A batch scheduler writes a job's stdout to a file. A progress bar redraws itself in place, so
its file holds nothing but the bar's final frame: no epoch, no accuracy for the whole run.
Two callbacks, each deciding by whether stdout is a terminal, split the work:

- :class:`TerminalProgressBar`: Lightning's RichProgressBar, drawn only on a terminal;
- :class:`JobLog`: when stdout is not a terminal, one line per epoch (epoch, step, train
  loss, val/acc, best val/acc, firing rate, time per epoch, time left) and a line every few
  minutes inside a long epoch.

The configs list both; either can be swapped or removed (``JobLog.init_args.when: always``
writes the lines on a terminal too).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_only

from pspikessm.callbacks.run_summary import format_duration

#: The clock of the time per epoch and of the lines inside an epoch (tests replace it).
_clock = time.monotonic


def stdout_is_terminal() -> bool:
    """Whether this process's stdout is a terminal (False when redirected to a file or pipe)."""
    return sys.stdout is not None and sys.stdout.isatty()


class TerminalProgressBar(RichProgressBar):
    """Lightning's RichProgressBar, disabled when stdout is not a terminal (see :class:`JobLog`).

    Takes RichProgressBar's arguments. It stays in the callbacks when disabled, so Lightning
    adds no default bar of its own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not stdout_is_terminal():
            self.disable()


class JobLog(L.Callback):
    """Plain progress lines for a job log, on rank zero, flushed as written.

    After every training epoch (its validation included)::

        epoch 3/20 step 1000 | train/loss 0.8123 | val/acc 0.4310 (best 0.4500) |
        firing rate 0.213 | 1 min 05 s/epoch | left ~18 min 20 s

    (one line). Inside an epoch, once ``every_minutes`` have passed since the last line::

        epoch 3/20 step 1200 | batch 400/1000 | train/loss 0.8010 | 12 min 03 s into the epoch

    Epochs count from 0, as in checkpoint names. Time per epoch is the mean over the epochs
    this process trained; the time left is that mean times the epochs still to go
    (``max_epochs``), or per step when ``max_steps`` ends the run first. A run resumed
    part-way into an epoch times that epoch from the resume, as the share of its batches
    trained since (half the batches in 2 min: 4 min per epoch). Metrics the run does not log
    (no validation, no FiringRateMonitor) are left out of the line.

    Args:
        when: ``not_terminal`` (default): only when stdout is not a terminal, where
            :class:`TerminalProgressBar` draws nothing; ``always``: also on a terminal.
        every_minutes: minutes between the lines inside an epoch; 0 for none.
    """

    def __init__(
        self, when: Literal["not_terminal", "always"] = "not_terminal", every_minutes: float = 5.0
    ) -> None:
        if when not in ("not_terminal", "always"):
            raise ValueError(f"JobLog(when={when!r}): expected 'not_terminal' or 'always'")
        if every_minutes < 0:
            raise ValueError(f"JobLog(every_minutes={every_minutes}): expected >= 0")
        self.when = when
        self.every_seconds = every_minutes * 60.0
        self._epoch_started = self._last_line = 0.0
        self._batches_in_epoch = 0  # trained by this process since the epoch (or resume) began
        self._epoch_seconds: list[tuple[float, float]] = []  # (seconds, share of the epoch)
        self._steps_at_start = 0
        self._started = 0.0

    def active(self) -> bool:
        return self.when == "always" or not stdout_is_terminal()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_seconds = []
        self._steps_at_start = trainer.global_step
        # A run resumed part-way into an epoch gets no on_train_epoch_start for it.
        self._started = self._epoch_started = self._last_line = _clock()
        self._batches_in_epoch = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = self._last_line = _clock()
        self._batches_in_epoch = 0

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._batches_in_epoch += 1
        now = _clock()
        if self.every_seconds <= 0 or now - self._last_line < self.every_seconds:
            return
        self._last_line = now
        batches = trainer.num_training_batches
        of = f"/{batches}" if isinstance(batches, int) else ""
        parts = [
            _epoch_and_step(trainer),
            f"batch {batch_idx + 1}{of}",
            *_metric_parts(trainer.callback_metrics, [("train/loss_step", "train/loss")]),
            f"{format_duration(now - self._epoch_started)} into the epoch",
        ]
        self._write(parts)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seconds = _clock() - self._epoch_started
        batches = trainer.num_training_batches
        share = self._batches_in_epoch / batches if isinstance(batches, int) and batches else 1.0
        self._epoch_seconds.append((seconds, min(share, 1.0)))
        metrics = trainer.callback_metrics
        parts = [_epoch_and_step(trainer)]
        parts += _metric_parts(metrics, [("train/loss_epoch", "train/loss")])
        accuracy = _metric_parts(metrics, [("val/acc", "val/acc")])
        best = metrics.get("val/acc_best")
        if accuracy and best is not None:
            accuracy[0] += f" (best {float(best):.4f})"
        parts += accuracy
        rate = metrics.get("sparsity/val/rate")
        if rate is not None:
            parts.append(f"firing rate {float(rate):.3f}")
        mean = self.epoch_seconds()
        parts.append(f"{format_duration(mean)}/epoch")
        left = self.seconds_left(trainer, mean)
        if left is not None:
            parts.append(f"left ~{format_duration(left)}")
        self._write(parts)

    def epoch_seconds(self) -> float:
        """Seconds per epoch: the time of the epochs trained here over the share of their
        batches trained here (a whole epoch counts 1; one resumed half-way, 1/2)."""
        timed = [(s, share) for s, share in self._epoch_seconds if share > 0]
        if not timed:  # resumed after the epoch's last batch: only its validation ran here
            return self._epoch_seconds[-1][0]
        return sum(s for s, _ in timed) / sum(share for _, share in timed)

    def seconds_left(self, trainer: L.Trainer, epoch_seconds: float) -> float | None:
        """Time to the run's end at this process's pace: by epochs, or by steps when
        ``max_steps`` ends it sooner; None when neither bounds the run."""
        estimates = []
        if trainer.max_epochs is not None and trainer.max_epochs >= 0:
            estimates.append(max(trainer.max_epochs - trainer.current_epoch - 1, 0) * epoch_seconds)
        steps_done = trainer.global_step - self._steps_at_start
        if trainer.max_steps >= 0 and steps_done > 0:
            per_step = (_clock() - self._started) / steps_done
            estimates.append(max(trainer.max_steps - trainer.global_step, 0) * per_step)
        return min(estimates) if estimates else None

    def _write(self, parts: list[str]) -> None:
        if self.active():
            _print_line(" | ".join(parts))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The validation run time counts into the epoch's (it runs before its end hook).
        if trainer.state.fn == TrainerFn.FITTING:
            self._last_line = _clock()


def _epoch_and_step(trainer: L.Trainer) -> str:
    total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
    return f"epoch {trainer.current_epoch}{total} step {trainer.global_step}"


def _metric_parts(metrics: dict[str, Any], tags: list[tuple[str, str]]) -> list[str]:
    """``label value`` for each ``(tag, label)`` whose tag ``metrics`` holds."""
    return [f"{label} {float(metrics[tag]):.4f}" for tag, label in tags if tag in metrics]


@rank_zero_only
def _print_line(line: str) -> None:
    print(line, flush=True)
