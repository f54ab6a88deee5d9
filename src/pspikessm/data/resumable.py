"""Data loading that survives preemption: a resumed run continues the epoch where it stopped.

Lightning saves ``state_dict()`` of the training loader in every checkpoint and gives it back
through ``load_state_dict()`` before a resumed fit iterates (its stateful-loader protocol). A
plain DataLoader has no state, so a run stopped after batch k of an epoch would start that
epoch's shuffled order again from its first batch: batches 0..k twice, the rest never.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from itertools import islice
from typing import Any

from torch.utils.data import DataLoader, DistributedSampler

#: Signals a scheduler sends to every process of a job to announce preemption (SLURM's
#: ``--signal=USR1@120`` reaches DataLoader workers too). Only the main process acts on them (it
#: saves a checkpoint, then stops the workers); by default they would kill a worker at once.
#: SIGTERM is not among them: the DataLoader stops workers that do not exit with SIGTERM.
WORKER_BLOCKED_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class ResumableSampler(DistributedSampler):
    """:class:`~torch.utils.data.DistributedSampler` whose next epoch can start part-way in.

    The order is the parent's: a function of ``(seed, epoch)``; :meth:`start_next_at` drops
    the first indices of the next iteration (this process's share) once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_start = 0

    def start_next_at(self, start: int) -> None:
        """Begin the next iteration at this process's ``start``-th index of the epoch."""
        self._next_start = start

    def __iter__(self) -> Iterator[int]:
        start, self._next_start = self._next_start, 0
        return islice(super().__iter__(), start, None)


class ResumableDataLoader(DataLoader):
    """DataLoader whose place in the epoch is saved in checkpoints (with a :class:`ResumableSampler`;
    with another sampler, as Lightning gives prediction loaders, it behaves as a DataLoader).

    - ``state_dict()``: the epoch, the batches of it already handed out (Lightning's data
      fetcher does not prefetch from loaders with a length, so these are the batches trained)
      and the global batch size they had.
    - ``load_state_dict()``: the next iteration of that epoch skips those batches (their
      indices, not their loading). An epoch that was complete resumes with the next one, at
      any batch size. Part-way into an epoch, another global batch size is refused, naming
      both: Lightning counts the epoch's batches done, at the checkpoint's size, so the
      resumed epoch would skip or repeat examples.
    - The iterator is built at the first ``next()``, not at ``iter()``: Lightning calls
      ``iter()`` before it sets the epoch of a resumed run, and worker processes draw their
      indices as soon as the iterator exists (they would load the wrong epoch's order).
    - Worker processes start with :data:`WORKER_BLOCKED_SIGNALS` blocked, so a warning signal
      sent to the whole job leaves them running while the main process writes its checkpoint.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch, self._batches_done = 0, 0
        self._resume: tuple[int, int] | None = None

    def state_dict(self) -> dict[str, int]:
        place = (self._epoch + 1, 0) if self._batches_done >= len(self) else None
        epoch, done = place or (self._epoch, self._batches_done)
        return {"epoch": epoch, "batches_done": done, "batch_size": self.global_batch_size()}

    def global_batch_size(self) -> int | None:
        """The examples of one step over all processes (``data.batch_size``)."""
        if self.batch_size is None:
            return None
        return self.batch_size * getattr(self.sampler, "num_replicas", 1)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        if not isinstance(self.sampler, ResumableSampler) or self.batch_size is None:
            raise TypeError(
                "ResumableDataLoader resumes part-way into an epoch with a ResumableSampler "
                f"and a batch_size; it has {type(self.sampler).__name__} and "
                f"batch_size={self.batch_size}"
            )
        epoch, done = int(state_dict["epoch"]), int(state_dict["batches_done"])
        saved = state_dict.get("batch_size")  # None: a checkpoint from before it was saved
        if done > 0 and saved is not None and saved != self.global_batch_size():
            raise ValueError(
                f"the checkpoint stopped part-way into epoch {epoch}, after {done} batches of "
                f"data.batch_size={saved}; this run has data.batch_size="
                f"{self.global_batch_size()}. The resumed epoch would skip {done} batches of "
                f"the new size, not the {done * saved} examples trained. Resume with "
                f"--data.init_args.batch_size {saved}; a new batch size can start from a "
                "checkpoint saved at the end of an epoch."
            )
        self._resume = (epoch, done)

    def __iter__(self) -> Iterator[Any]:
        return self._batches()

    def _batches(self) -> Iterator[Any]:
        epoch, skipped = getattr(self.sampler, "epoch", 0), 0
        if self._resume is not None and self._resume[0] == epoch:
            skipped = self._resume[1]
            self.sampler.start_next_at(skipped * self.batch_size)
        self._resume = None
        blocked = WORKER_BLOCKED_SIGNALS if self.num_workers > 0 else ()
        with _signals_blocked(blocked):  # the workers fork inside, inheriting the mask
            iterator = super().__iter__()
        self._epoch, self._batches_done = epoch, skipped
        for batch in iterator:
            self._batches_done += 1
            yield batch


@contextlib.contextmanager
def _signals_blocked(signals: tuple[signal.Signals, ...]) -> Iterator[None]:
    """Block ``signals`` in this thread for the duration (pending ones arrive afterwards)."""
    if not signals:
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
