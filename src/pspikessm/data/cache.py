"""On-disk cache of preprocessed data, keyed by the settings and the source files.

The cache lives in ``data.cache_dir`` if set, else in ``$PSPIKESSM_CACHE_DIR`` if set, else
in ``<data_dir>/.cache``: a read-only data folder (a shared copy on a cluster) works with
either of the first two.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from pspikessm.files import DiskFullError, atomic_write

#: Environment variable naming the cache folder when ``data.cache_dir`` is not set.
CACHE_DIR_VARIABLE = "PSPIKESSM_CACHE_DIR"


def resolve_cache_dir(data_dir: Path, cache_dir: str | Path | None) -> Path:
    """The cache folder: ``cache_dir``, else ``$PSPIKESSM_CACHE_DIR``, else ``data_dir/.cache``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_DIR_VARIABLE):
        return Path(os.environ[CACHE_DIR_VARIABLE])
    return data_dir / ".cache"


def cache_key(settings: dict[str, Any], sources: Iterable[Path]) -> str:
    """A short hash of the preprocessing ``settings`` and each source file's size and mtime.

    Any changed setting or touched file gives a new key, so a stale cache is never reused.
    """
    described = [
        settings,
        [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in sources],
    ]
    blob = json.dumps(described, sort_keys=True, default=str).encode()
    return hashlib.sha1(blob).hexdigest()[:16]


class UnreadableCache(ValueError):
    """A cache file that exists but cannot be read (truncated by a copy or a full disk, or
    overwritten): the message names it and says how it is rebuilt."""


def load_cache(path: Path) -> dict[str, Any]:
    """A cache file, memory-mapped: opening it is instant whatever its size, and the
    processes of one machine (DDP ranks, loader workers) share its pages.

    Raises:
        UnreadableCache: the file is not a whole cache (a truncated zip archive, a bad pickle).
    """
    try:
        return torch.load(path, mmap=True, weights_only=True)
    except OSError as error:
        if error.errno != errno.EINVAL:  # missing or forbidden: not the cache's fault
            raise
        reason = error
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
        reason = error
    first_line = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    raise UnreadableCache(
        f"{path}: the preprocessed-data cache cannot be read ({first_line}): it is truncated or "
        "damaged (deleted, the next `pspikessm prepare` or fit builds it again)"
    ) from reason


def write_cache(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically (several processes may race to build it), with
    the umask's file mode; a temporary file left by a killed writer is removed.

    Raises:
        OSError: naming the folder and how to put the cache elsewhere, if it is not writable
            (:class:`~pspikessm.files.DiskFullError` when the disk is full).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda file: torch.save(data, file))
    except DiskFullError:
        raise
    except OSError as error:
        raise OSError(
            f"cannot write the preprocessed-data cache to {path.parent} ({error}); set "
            f"data.cache_dir (or the environment variable {CACHE_DIR_VARIABLE}) to a "
            "writable folder"
        ) from error
