"""Checkpoint files that are either the old one or the new one, never half of either.

Lightning's default writer stages the file under ``$TMPDIR`` and moves it: when the logs live
on another filesystem (the usual cluster layout: node-local ``/tmp``, shared ``/scratch``) the
move is a copy, and a job killed during it leaves a truncated ``last.ckpt`` and no good one.
Here the temporary file is written in the destination folder, flushed to disk, and renamed
over the destination (``os.replace`` is atomic within one filesystem).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then rename it to ``path``.

    The data is fsync'ed before the rename and the folder after it, so after a crash (or a
    SIGKILL at any moment) ``path`` holds either its previous content or the complete new one.
    Temporary files left by an earlier kill (``.<name>.*.tmp``) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{prefix}*.tmp"):
        stale.unlink(missing_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_folder(path.parent)


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


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with :func:`atomic_write` for local paths.

    Remote paths (``s3://``, ...) keep Lightning's writer: object stores replace whole objects.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_write(path, lambda file: torch.save(checkpoint, file))


def use_atomic_checkpoints(trainer: L.Trainer) -> None:
    """Write ``trainer``'s checkpoints with :class:`AtomicCheckpointIO`.

    Only Lightning's default writer is replaced: a CheckpointIO the user configured (or one a
    strategy brings, such as DeepSpeed's) is left alone.
    """
    # The strategy's checkpoint_io setter: checked with Lightning 2.6.6.
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()
