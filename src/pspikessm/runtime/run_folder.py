"""Where a configured run keeps its checkpoints, and which ``last.ckpt`` ``--ckpt_path last`` means.

The checkpoint folder is Lightning's ModelCheckpoint rule applied to the parsed config (before
anything is built): ``checkpoint.dirpath`` if set; else ``<save_dir>/<name>/<version>/checkpoints``
of the (first) logger, ``version_<n>`` for an integer or automatic version; else
``<trainer.default_root_dir>/checkpoints`` without a logger. With an automatic version,
``last`` is the ``last.ckpt`` written most recently among the ``version_<n>`` folders (the run
that owns the newest checkpoint), and the run folders numbered after it that hold none are
named, so that resuming an older run is never silent (the folders of ``validate``, ``test``
and ``predict``, which never hold one, are not).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAST = "last.ckpt"

#: First line of a run record (``config.yaml``, ``config-attempt<N>.yaml``): the command that
#: ran in the folder (:class:`~pspikessm.runtime.callbacks.run_record.RunConfigRecord`).
RECORD_HEADER = "# pspikessm {command}: {name}, started {time}"
#: Commands whose run folder holds an evaluation, never a checkpoint of its own.
EVALUATION_COMMANDS = ("validate", "test", "predict")

log = logging.getLogger(__name__)


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


def recorded_command(folder: Path) -> str | None:
    """The command that ran in the run folder ``folder`` (``fit``, ``test``, ...), from the
    header of its ``config.yaml``; None without one."""
    try:
        with (folder / "config.yaml").open(encoding="utf-8", errors="replace") as record:
            first = record.readline()
    except OSError:
        return None
    match = re.match(r"# pspikessm (\w+): ", first)
    return match[1] if match else None


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
    # A validate/test/predict folder holds no checkpoint by design: not a run that stopped.
    newer = tuple(
        folders[v]
        for v in sorted(folders)
        if v > newest
        and v not in written
        and recorded_command(folders[v]) not in EVALUATION_COMMANDS
    )
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
    """A run folder this process owns, through an exclusive ``flock`` on ``.run.lock`` in it.

    The kernel drops the lock when the process ends, however it ends (SIGKILL, a lost node):
    a requeued job never finds its folder held by its own dead attempt. The file names the
    holder (host, pid) for the message of a refused start.

    Attributes:
        folder: the run folder.
        created: whether this process created the folder (it is removed on release when the
            start failed and left it empty).
        descriptor: the open, locked file (None where the filesystem has no locks).
    """

    folder: Path
    created: bool
    descriptor: int | None

    def release(self) -> None:
        """Remove the lock file and unlock; remove the folder if this process created it and
        it is empty (a start that wrote nothing)."""
        if self.descriptor is not None:
            (self.folder / LOCK).unlink(missing_ok=True)  # while locked: see lock_run_folder
            os.close(self.descriptor)  # unlocks
            self.descriptor = None
        if self.created:
            with contextlib.suppress(OSError):
                self.folder.rmdir()


#: The run folders this process holds, released by :func:`release_run_folders`.
HELD: list[RunFolderLock] = []


def release_run_folders() -> None:
    """Release every run folder this process holds (at the end of a command, or its failure)."""
    while HELD:
        HELD.pop().release()


def lock_run_folder(folder: Path, created: bool = False) -> RunFolderLock:
    """Take ``folder`` for this process, or raise :class:`RunFolderTaken` naming the holder.

    A second start in a folder this process holds already (tests run several fits in one
    process) keeps that lock. A filesystem without ``flock`` (some network mounts) runs
    unlocked, saying so.
    """
    folder = Path(os.path.abspath(folder))
    for held in HELD:
        if held.folder == folder:
            return held
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            holder = _holder(lock)
            raise RunFolderTaken(
                f"run folder {folder} is in use by {holder} ({lock}). Start this run under "
                "another trainer.logger.init_args.version (or leave it unset for a new "
                "folder), or wait for that run to end."
            ) from None
        except OSError as error:  # no locks on this filesystem
            os.close(descriptor)
            log.info("cannot lock run folder %s (%s): running without a lock", folder, error)
            held = RunFolderLock(folder, created, None)
            break
        # The holder before us may have removed the file after we opened it: lock the new one.
        if not lock.exists() or os.fstat(descriptor).st_ino != lock.stat().st_ino:
            os.close(descriptor)
            continue
        os.ftruncate(descriptor, 0)
        line = f"process {os.getpid()} on {socket.gethostname()} since {time.ctime()}\n"
        os.write(descriptor, line.encode())
        held = RunFolderLock(folder, created, descriptor)
        break
    HELD.append(held)
    return held


def _holder(lock: Path) -> str:
    try:
        return lock.read_text().strip() or "another process"
    except OSError:
        return "another process"


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
