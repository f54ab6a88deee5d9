"""Reading the text files of a data set (TSV rows, file lists, metadata) with useful errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, without the line end (``\\n`` or ``\\r\\n``).

    Only ``\\n`` ends a line (a lone ``\\r`` inside a document stays part of it).

    Raises:
        ValueError: a line that is not UTF-8 (a binary file), naming the file and the line.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(
                    f"{path}:{number}: not UTF-8 text ({error.reason} at byte {error.start} of "
                    "the line); is it a binary file?"
                ) from None
            yield number, line.removesuffix("\n").removesuffix("\r")


def no_rows_error(path: Path, what: str) -> ValueError:
    """The error for a data file that holds no example (empty, or a header only)."""
    return ValueError(f"{path}: no {what} (the file is empty or holds only a header)")
