"""Checkpoint files that are either the old one or the new one, never half of either.

Lightning's default writer stages the file under ``$TMPDIR`` and moves it: when the logs live
on another filesystem (the usual cluster layout: node-local ``/tmp``, shared ``/scratch``) the
move is a copy, and a job killed during it leaves a truncated ``last.ckpt`` and no good one.
Here the temporary file is written in the destination folder, flushed to disk, and renamed
over the destination (``os.replace`` is atomic within one filesystem).
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pspikessm.files import DiskFullError, atomic_write, atomic_write_text, file_mode

__all__ = [
    "AtomicCheckpointIO",
    "DiskFullError",
    "atomic_write",
    "atomic_write_text",
    "file_mode",
    "use_atomic_checkpoints",
]


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
