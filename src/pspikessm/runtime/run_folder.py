"""Where a configured run keeps its checkpoints, and which ``last.ckpt`` ``--ckpt_path last`` means.

The checkpoint folder is Lightning's ModelCheckpoint rule applied to the parsed config (before
anything is built): ``checkpoint.dirpath`` if set; else ``<save_dir>/<name>/<version>/checkpoints``
of the (first) logger, ``version_<n>`` for an integer or automatic version; else
``<trainer.default_root_dir>/checkpoints`` without a logger. With an automatic version,
``last`` is the newest ``version_<n>`` that holds a ``last.ckpt``.
"""

from __future__ import annotations

import re
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
    """

    path: Path | None
    version: int | str | None
    looked: str


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
    versions = [
        int(match.group(1))
        for path in run_root.glob("version_*")
        if (match := re.fullmatch(r"version_(\d+)", path.name))
        and (path / "checkpoints" / LAST).is_file()
    ]
    if not versions:
        return LastCheckpoint(None, None, looked)
    newest = max(versions)
    return LastCheckpoint(run_root / f"version_{newest}" / "checkpoints" / LAST, newest, looked)


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
