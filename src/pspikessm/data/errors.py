"""The error for absent data: what is missing, the expected layout, and how to get it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def require_at_least(option: str, value: int, least: int = 1) -> None:
    """Raise ValueError naming ``data.<option>`` unless ``value >= least``."""
    if value < least:
        raise ValueError(f"data.{option}={value}: expected an integer >= {least}")


def require_folder(option: str, path: Path) -> None:
    """Raise an error naming ``data.<option>`` if ``path`` exists but is not a usable folder
    (a file, a symlink loop); an absent path is fine (the data may be fetched there)."""
    try:
        path.stat()
    except FileNotFoundError:
        return
    except OSError as error:  # ELOOP, EACCES, ...
        raise NotADirectoryError(
            f"data.{option}={path}: cannot be opened ({error.strerror}; a symlink loop?); "
            "expected a folder"
        ) from None
    if not path.is_dir():
        raise NotADirectoryError(f"data.{option}={path} is a file; expected a folder")


class DataNotFound(FileNotFoundError):
    """A task's files are not where it reads them.

    Attributes:
        missing: the absent files or folders.
        partial: some of the task's data is present. ``prepare_data`` then downloads nothing
            (it would mix a fresh copy with the user's files) and the error says what to restore.
    """

    def __init__(self, message: str, missing: list[Path], partial: bool) -> None:
        super().__init__(message)
        self.missing, self.partial = missing, partial


def missing_data(
    task: str,
    missing: Iterable[Path],
    expected: str,
    urls: Iterable[str] = (),
    partial: bool = False,
) -> DataNotFound:
    """A :class:`DataNotFound` naming each missing path, the layout and where to get it."""
    missing = list(missing)
    urls = list(urls)
    message = (
        f"{task} data not found: missing {', '.join(str(path) for path in missing)}. "
        f"Expected {expected}."
    )
    if partial:
        message += (
            " The rest of the data is there, so nothing is downloaded: restore the missing "
            "files (or move the folder away to download a fresh copy)."
        )
    elif urls:
        message += (
            f" Download {', '.join(urls)} and unpack it into data.data_dir, or set "
            "data.download=true and run `pspikessm prepare` with the same --config and --data "
            "options."
        )
    return DataNotFound(message, missing, partial)


def require_files(task: str, files: list[Path], expected: str, urls: Iterable[str]) -> list[Path]:
    """``files`` if they all exist, else the :func:`missing_data` error for the absent ones
    (``partial`` when some of them exist)."""
    if missing := [path for path in files if not path.exists()]:
        raise missing_data(task, missing, expected, urls, partial=len(missing) < len(files))
    return files
