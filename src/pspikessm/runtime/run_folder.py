"""Where a configured run keeps its checkpoints, and which ``last.ckpt`` ``--ckpt_path last`` means.

The checkpoint folder is Lightning's ModelCheckpoint rule applied to the parsed config (before
anything is built): ``checkpoint.dirpath`` if set; else ``<save_dir>/<name>/<version>/checkpoints``
of the (first) logger, ``version_<n>`` for an integer or automatic version; else
``<trainer.default_root_dir>/checkpoints`` without a logger. With an automatic version,
``last`` is the ``last.ckpt`` written most recently among the ``version_<n>`` folders (the run
that owns the newest checkpoint), and the run folders numbered after it that hold none are
named, so that resuming an older run is never silent.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAST = "last.ckpt"


@dataclass(frozen=True)
class LastCheckpoint:
    """The outcome of looking for a run's ``last.ckpt``.

    Attributes:
        path: the checkpoint, or None when there is none.
        version: the logger version of the run folder it is in (None: not a versioned run).
        looked: where it was looked for (a path or a glob pattern), for messages.
        newer_without: run folders numbered after ``version`` that hold no ``last.ckpt``
            (a newer run that stopped before its first checkpoint).
    """

    path: Path | None
    version: int | str | None
    looked: str
    newer_without: tuple[Path, ...] = ()


def _logger_location(config: Any) -> tuple[Path, str, int | str | None] | None | str:
    """``(save_dir, name, version)`` of the logger that names the run folder; None without a
    logger; the logger's class path when its folder layout is unknown."""
    root = Path(config.trainer.get("default_root_dir") or ".")
    logger = config.trainer.get("logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else False
    if logger is False:
        return None
    if logger is None or logger is True:  # Lightning's default TensorBoardLogger
        return root, "lightning_logs", None
    init_args = logger.get("init_args") or {}
    if "save_dir" not in init_args:
        return str(logger.get("class_path"))
    save_dir = Path(init_args.get("save_dir") or root)
    name = init_args.get("name")
    return save_dir, "lightning_logs" if name is None else str(name), init_args.get("version")


def _checkpoint_dirpath(config: Any) -> str | None:
    checkpoint = config.get("checkpoint")
    return checkpoint.get("dirpath") if checkpoint else None


def _version_folder(version: int | str) -> str:
    return version if isinstance(version, str) else f"version_{version}"


def find_last_checkpoint(config: Any) -> LastCheckpoint:
    """The ``last.ckpt`` that ``--ckpt_path last`` resumes for the subcommand config ``config``."""
    dirpath = _checkpoint_dirpath(config)
    location = _logger_location(config)
    if dirpath:
        path = Path(dirpath) / LAST
        return LastCheckpoint(path if path.is_file() else None, None, str(path))
    if location is None:
        path = Path(config.trainer.get("default_root_dir") or ".") / "checkpoints" / LAST
        return LastCheckpoint(path if path.is_file() else None, None, str(path))
    if isinstance(location, str):
        return LastCheckpoint(None, None, f"(no known run folder layout for logger {location})")
    save_dir, name, version = location
    run_root = save_dir / name
    if version is not None:
        path = run_root / _version_folder(version) / "checkpoints" / LAST
        return LastCheckpoint(path if path.is_file() else None, version, str(path))
    looked = str(run_root / "version_*" / "checkpoints" / LAST)
    folders = {
        int(match.group(1)): path
        for path in run_root.glob("version_*")
        if (match := re.fullmatch(r"version_(\d+)", path.name))
    }
    written = {
        version: (folder / "checkpoints" / LAST).stat().st_mtime_ns
        for version, folder in folders.items()
        if (folder / "checkpoints" / LAST).is_file()
    }
    if not written:
        return LastCheckpoint(None, None, looked)
    newest = max(written, key=lambda version: (written[version], version))
    newer = tuple(folders[v] for v in sorted(folders) if v > newest and v not in written)
    path = folders[newest] / "checkpoints" / LAST
    return LastCheckpoint(path, newest, looked, newer)


def fixed_checkpoint_folder(config: Any) -> Path | None:
    """The checkpoint folder of a run whose folder is fixed by the config (``checkpoint.dirpath``
    or a logger ``version``); None when every run gets a new folder."""
    dirpath = _checkpoint_dirpath(config)
    if dirpath:
        return Path(dirpath)
    location = _logger_location(config)
    if location is None:
        return Path(config.trainer.get("default_root_dir") or ".") / "checkpoints"
    if isinstance(location, str) or location[2] is None:
        return None
    save_dir, name, version = location
    return save_dir / name / _version_folder(version) / "checkpoints"


def continue_run(config: Any, found: LastCheckpoint) -> None:
    """Point ``config`` (a ``fit`` config) at ``found``: resume it, in its own run folder.

    Lightning's default logger (none configured) cannot be pointed at a version: the resumed
    run then logs into a new ``version_<n>``, which the next ``last`` finds.
    """
    config.ckpt_path = str(found.path)
    logger = config.trainer.get("logger")
    if isinstance(logger, list):
        logger = logger[0] if logger else None
    if found.version is not None and logger not in (None, True, False):
        logger.init_args.version = found.version


LOCK = ".run.lock"


class RunFolderTaken(RuntimeError):
    """Another live run holds the run folder."""


@dataclass
class RunFolderLock:
    """A run folder this process owns: ``.run.lock`` in it names the holder (host, pid).

    Attributes:
        folder: the run folder.
        created: whether this process created the folder (it is removed on release when the
            start failed and left it empty).
    """

    folder: Path
    created: bool

    def release(self) -> None:
        """Remove the lock (if still this process's) and, when empty, a folder it created."""
        lock = self.folder / LOCK
        if _holder(lock) == (socket.gethostname(), os.getpid()):
            lock.unlink(missing_ok=True)
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty: a start that wrote nothing


#: The run folders this process holds, released by :func:`release_run_folders`.
HELD: list[RunFolderLock] = []


def release_run_folders() -> None:
    """Release every run folder this process holds (at the end of a command, or its failure)."""
    while HELD:
        HELD.pop().release()


def _holder(lock: Path) -> tuple[str, int] | None:
    try:
        host, pid, *_ = lock.read_text().split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def lock_run_folder(folder: Path, created: bool = False) -> RunFolderLock:
    """Take ``folder`` for this process, or raise :class:`RunFolderTaken` naming the holder.

    The lock is a file created exclusively (``O_EXCL``: atomic, also on NFS >= 3). A lock of
    this host whose process has ended is stale and taken over; so is one of this very process
    (a previous run in it, as tests run several). A lock of another host cannot be checked:
    it is an error saying how to remove it once that job is gone.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    me = (socket.gethostname(), os.getpid())
    for _ in range(3):
        try:
            descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _holder(lock)
            mine_or_gone = (
                holder is None or holder == me or (holder[0] == me[0] and not _alive(holder[1]))
            )
            if not mine_or_gone:
                host, pid = holder
                raise RunFolderTaken(
                    f"run folder {folder} is in use by process {pid} on {host} ({lock}). "
                    "Start this run under another trainer.logger.init_args.version (or leave "
                    "it unset for a new folder), or wait for that run; if it is gone (another "
                    f"machine's crashed job), delete {lock}."
                ) from None
            lock.unlink(missing_ok=True)
            continue
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{me[0]} {me[1]} {time.time():.0f}\n")
        held = RunFolderLock(folder, created)
        HELD.append(held)
        return held
    raise RunFolderTaken(f"could not lock run folder {folder}: {lock} keeps changing")


def new_version_folder(run_root: Path) -> tuple[int, Path]:
    """Create the next free ``version_<n>`` in ``run_root`` atomically (``mkdir`` succeeds for
    one process only), so runs started together get separate folders."""
    run_root.mkdir(parents=True, exist_ok=True)
    taken = [
        int(match.group(1))
        for path in run_root.glob("version_*")
        if (match := re.fullmatch(r"version_(\d+)", path.name))
    ]
    version = max(taken, default=-1) + 1
    while True:
        folder = run_root / f"version_{version}"
        try:
            folder.mkdir()
        except FileExistsError:
            version += 1
            continue
        return version, folder


def claim_run_folder(config: Any) -> RunFolderLock | None:
    """Own the run folder of the ``fit`` config ``config`` (call it once ``ckpt_path`` is
    settled): an automatic logger version is chosen here, atomically, and written into the
    config; the folder is then locked. None when the layout is not known (Lightning's default
    logger, a logger without ``save_dir``): those runs keep Lightning's own choice."""
    dirpath = _checkpoint_dirpath(config)
    location = _logger_location(config)
    if isinstance(location, tuple):
        save_dir, name, version = location
        if version is None:
            if config.trainer.get("logger") in (None, True):
                return None  # Lightning's default logger: its version cannot be set
            version, folder = new_version_folder(save_dir / name)
            _logger(config).init_args.version = version
            return lock_run_folder(folder, created=True)
        folder = save_dir / name / _version_folder(version)
        return lock_run_folder(folder, created=not folder.exists())
    if dirpath:
        return lock_run_folder(Path(dirpath), created=not Path(dirpath).exists())
    return None


def _logger(config: Any) -> Any:
    logger = config.trainer.get("logger")
    return logger[0] if isinstance(logger, list) else logger
