"""Progress of long data work (downloads, unpacking, preprocessing) on process rank 0.

On a terminal it is a rich progress bar (the library behind Lightning's RichProgressBar):
bytes, rate and time left for downloads, items and time left otherwise. When the output is
not a terminal (a batch job's log file) it is one log line per 10 %. Other ranks show nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

# Lightning's rank_zero_only (the same object, set to each process's rank), without importing
# Lightning: the ListOps generator uses this module and starts in a fraction of a second.
from lightning_utilities.core.rank_zero import rank_zero_only
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

log = logging.getLogger(__name__)

#: Advances a progress display by a number of bytes or items.
Advance = Callable[[int], None]
Item = TypeVar("Item")
Result = TypeVar("Result")


@contextmanager
def progress(description: str, total: int | None, unit: str = "items") -> Iterator[Advance]:
    """Show the progress of ``total`` bytes (``unit="bytes"``) or items; yields ``advance(n)``.

    ``total`` None: the size is unknown, the display shows the count only.
    """
    if getattr(rank_zero_only, "rank", 0) != 0:
        yield lambda count: None
        return
    console = Console(stderr=True)
    if console.is_terminal:
        with _bar(console, unit) as bar:
            task = bar.add_task(description, total=total)
            yield lambda count: bar.advance(task, count)
        return
    lines = _TenPercentLines(description, total, unit)
    yield lines.advance
    lines.finish()


def map_in_threads(
    function: Callable[[Item], Result], items: list[Item], description: str
) -> Iterator[Result]:
    """``function`` of each item, in order, computed by one thread per core (file decoding
    releases the GIL) while the progress of the items is shown."""
    with (
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
        progress(description, len(items)) as advance,
    ):
        for result in pool.map(function, items):
            yield result
            advance(1)


def _bar(console: Console, unit: str) -> Progress:
    counts = (
        [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else [MofNCompleteColumn()]
    )
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        *counts,
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class _TenPercentLines:
    """Log lines at every 10 % of ``total`` (or at the start and end when it is unknown)."""

    def __init__(self, description: str, total: int | None, unit: str) -> None:
        self.description, self.total, self.unit = description, total, unit
        self.done, self.reported = 0, 0
        log.info(f"{description}: {self._amount(0)}")

    def _amount(self, done: int) -> str:
        if self.unit == "bytes":
            size = f"{done / 1e6:.1f} MB"
            return size if self.total is None else f"{size} of {self.total / 1e6:.1f} MB"
        return f"{done} {self.unit}" if self.total is None else f"{done} of {self.total}"

    def advance(self, count: int) -> None:
        self.done += count
        if not self.total:
            return
        tenths = min(10, self.done * 10 // self.total)
        if tenths > self.reported:
            self.reported = tenths
            log.info(f"{self.description}: {10 * tenths}% ({self._amount(self.done)})")

    def finish(self) -> None:
        if not self.total:
            log.info(f"{self.description}: done ({self._amount(self.done)})")
