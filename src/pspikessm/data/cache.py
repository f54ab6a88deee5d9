"""On-disk cache of preprocessed splits, keyed by the settings and the source files."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch


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


def load_or_build(path: Path, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``torch.load(path)`` if it exists, else ``build()`` and write it atomically.

    Atomic replacement lets several processes (DDP ranks) race to build the same cache.
    """
    if path.exists():
        return torch.load(path, weights_only=True)
    data = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return data
