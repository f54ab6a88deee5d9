"""Checkpoint files that are either the old one or the new one, never half of either; and
checkpoints read only when they are whole, trusted and finite.

Lightning's default writer stages the file under ``$TMPDIR`` and moves it: when the logs live
on another filesystem (the usual cluster layout: node-local ``/tmp``, shared ``/scratch``) the
move is a copy, and a job killed during it leaves a truncated ``last.ckpt`` and no good one.
Here the temporary file is written in the destination folder, flushed to disk, and renamed
over the destination (``os.replace`` is atomic within one filesystem). Reading goes through
:mod:`pspikessm.runtime.checkpoint_checks`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pspikessm.files import DiskFullError, atomic_write, atomic_write_text, file_mode
from pspikessm.runtime.checkpoint_checks import check_finite, read_checkpoint

__all__ = [
    "AtomicCheckpointIO",
    "DiskFullError",
    "atomic_write",
    "atomic_write_text",
    "file_mode",
    "use_atomic_checkpoints",
]


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with :func:`atomic_write` for local paths, and checked
    reads for every path.

    Remote paths (``s3://``, ...) keep Lightning's writer: object stores replace whole objects.
    A read is weights-only unless ``weights_only`` is False (which only the command line can
    set); a truncated or refused file is an error naming it and what to do, and so is one with
    non-finite weights (:mod:`pspikessm.runtime.checkpoint_checks`).

    Args:
        parameter_names: called at a read: the model's parameter names (their NaN and
            infinities are refused; other states' NaN only). None: every tensor is a parameter.
    """

    def __init__(self, parameter_names: Callable[[], Collection[str]] | None = None) -> None:
        super().__init__()
        self.parameter_names = parameter_names

    def load_checkpoint(
        self, path: str | os.PathLike, *args: Any, weights_only: bool | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # torch < 2.6 (and Lightning for remote paths) takes None as "unpickle anything".
        weights_only = True if weights_only is None else weights_only
        load = super().load_checkpoint
        checkpoint = read_checkpoint(
            path, lambda: load(path, *args, weights_only=weights_only, **kwargs)
        )
        names = self.parameter_names() if self.parameter_names is not None else None
        check_finite(checkpoint, path, names)
        return checkpoint

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_write(path, lambda file: torch.save(checkpoint, file))


def use_atomic_checkpoints(trainer: L.Trainer) -> None:
    """Write and read ``trainer``'s checkpoints with :class:`AtomicCheckpointIO`.

    Only Lightning's default writer is replaced: a CheckpointIO the user configured (or one a
    strategy brings, such as DeepSpeed's) is left alone.
    """
    # The strategy's checkpoint_io setter: checked with Lightning 2.6.6.
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO(
            lambda: [name for name, _ in trainer.lightning_module.named_parameters()]
        )
