"""Atomic file writes for checkpoints, run records and data caches: after a crash a file
holds its old version or the new one, never half of either.

A temporary file is written beside the destination, flushed to disk, and renamed over it
(``os.replace`` is atomic within one filesystem), with the mode the user's umask gives. Used
for checkpoints (:mod:`pspikessm.runtime.checkpoint_io`), run records and data caches; it
imports nothing of the package, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class DiskFullError(OSError):
    """A file could not be written for lack of space; the previous version is untouched."""


def file_mode() -> int:
    """The mode ``open()`` gives a new file under the process's umask (0644 under umask 022).

    ``tempfile.mkstemp`` creates files 0600 whatever the umask; the files written here are
    given this mode instead, so a group that shares a run folder or data cache can read them.
    """
    umask = os.umask(0o022)  # the only portable way to read it: set it and put it back
    os.umask(umask)
    return 0o666 & ~umask


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def _owner_is_gone(temporary: Path, prefix: str) -> bool:
    """Whether the writer of a ``<prefix><host>.<pid>.<random>.tmp`` file has ended.

    A file of another machine (a shared filesystem) counts as gone only after a day: its
    process cannot be asked. Files of an older naming (no host and pid) are gone.
    """
    parts = temporary.name[len(prefix) :].split(".")
    if len(parts) < 4 or not parts[-3].isdigit():
        return True
    host, pid = ".".join(parts[:-3]), int(parts[-3])
    if host != socket.gethostname():
        try:
            return time.time() - temporary.stat().st_mtime > 86_400
        except FileNotFoundError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` whose writer was killed; the removed ones.

    Only files whose writing process has ended are removed: several processes may write the
    same path at once (DDP ranks building one data cache), each into its own temporary file.
    """
    path = Path(path)
    prefix = _temporary_prefix(path)
    removed = []
    for stale in path.parent.glob(f"{prefix}*.tmp"):
        if _owner_is_gone(stale, prefix):
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


def _open_temporary(descriptor: int) -> IO[bytes]:
    return os.fdopen(descriptor, "wb")


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The data is fsync'ed before the rename and the folder after it, so after a crash (or a
    SIGKILL at any moment) ``path`` holds either its previous content or the complete new one.
    The file gets the mode of :func:`file_mode` (the umask's). Temporary files left by a
    killed writer (``.<name>.<host>.<pid>.<random>.tmp``) are removed first
    (:func:`remove_stale_temporaries`).

    Raises:
        DiskFullError: the device is full (``ENOSPC``, also when ``write`` reports it as
            another error, as ``torch.save`` does); it names the file and its folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    prefix = f"{_temporary_prefix(path)}{socket.gethostname()}.{os.getpid()}."
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        os.fchmod(descriptor, file_mode())
        with _open_temporary(descriptor) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        if _is_disk_full(error, path.parent):
            raise DiskFullError(
                errno.ENOSPC,
                f"no space left on the device of {path.parent} while writing {path.name}; "
                f"the previous {path.name} (if any) is untouched. Free space there (or point "
                "the run's folder, trainer.logger.init_args.save_dir, or data.cache_dir "
                "elsewhere) and run again",
            ) from error
        raise
    _fsync_folder(path.parent)


def _is_disk_full(error: BaseException, folder: Path) -> bool:
    """ENOSPC in ``error`` or its causes; torch.save's RuntimeError hides it, so a failed write
    is also called a full disk when the folder's device has no space left."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(error, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(folder).free == 0
    except OSError:
        return False


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write` of a UTF-8 text."""
    atomic_write(path, lambda file: file.write(text.encode()))


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
