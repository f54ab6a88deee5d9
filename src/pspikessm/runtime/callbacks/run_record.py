"""The resolved configuration of every attempt of a run, in the run folder, never overwritten."""

from __future__ import annotations

import contextlib
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.cli import SaveConfigCallback

from pspikessm.runtime.checkpoint_io import atomic_write_text
from pspikessm.runtime.run_folder import RECORD_HEADER, release_run_folders


def record_path(run_dir: Path) -> Path:
    """``config.yaml`` for the first attempt in ``run_dir``, then ``config-attempt<N>.yaml``."""
    first = run_dir / "config.yaml"
    if not first.exists():
        return first
    taken = [
        int(match.group(1))
        for path in run_dir.glob("config-attempt*.yaml")
        if (match := re.fullmatch(r"config-attempt(\d+)\.yaml", path.name))
    ]
    return run_dir / f"config-attempt{max(taken, default=1) + 1}.yaml"


class RunConfigRecord(SaveConfigCallback):
    """LightningCLI's SaveConfigCallback, written once the attempt has really started.

    Lightning writes ``config.yaml`` when the trainer sets up, before the checkpoint is
    loaded, and overwrites it on every resume (even one that then fails). Here each attempt
    writes its own file (:func:`record_path`) when training (or evaluation) starts: after the
    checkpoint, architecture and optimiser checks and the sanity check. A header comment
    names the command, the time and, for a resume, the checkpoint and its global step. Rank
    zero writes; the file is replaced atomically. ``weights_only`` is recorded as null even
    when this command line set it: a record must never turn weights-only loading off.

    A start that fails leaves the run folder as it was: nothing is recorded, and the files
    the logger wrote while the trainer set up (its event file, before any check could run;
    ``hparams.yaml`` of a new run) are removed (the CLI calls :meth:`note_existing_files`
    before the trainer runs).
    """

    _checkpoint_step: int | None = None  # the loaded checkpoint's, when it has callbacks

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Nothing yet: see :meth:`_record`."""

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # validate/test/predict load the weights only: their trainer's global_step stays 0.
        self._checkpoint_step = checkpoint.get("global_step")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "validate":  # a fit records at train start, after the sanity check
            self._record(trainer)

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer)

    def _record(self, trainer: L.Trainer) -> None:
        if self.already_saved or not self.save_to_log_dir:
            return
        log_dir = trainer.log_dir  # broadcast from rank zero: every process calls it
        if trainer.is_global_zero and log_dir is not None:
            path = record_path(Path(log_dir))
            command = getattr(trainer.state.fn, "value", trainer.state.fn)
            started = f"{datetime.now():%Y-%m-%d %H:%M:%S}"
            header = RECORD_HEADER.format(command=command, name=path.name, time=started)
            if trainer.ckpt_path:
                step = trainer.global_step if command == "fit" else self._checkpoint_step
                header += f"\n# from checkpoint {trainer.ckpt_path}"
                header += f" (global step {step})" if step is not None else ""
            config = self.config.clone()
            if "weights_only" in config:  # only a command line may turn it off, never a record
                config.weights_only = None
            dump = self.parser.dump(config, skip_none=False)
            atomic_write_text(path, f"{header}\n{dump}")
        self.already_saved = True

    def note_existing_files(self, trainer: L.Trainer) -> None:
        """Remember the run folder's files before the trainer runs (call it then)."""
        log_dir = trainer.logger.log_dir if trainer.logger is not None else None
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._existing = _files(self._log_dir) if self._log_dir else set()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        log_dir = getattr(self, "_log_dir", None)
        if self.already_saved or not trainer.is_global_zero or log_dir is None:
            return
        for path in _files(log_dir) - self._existing:  # the logger's event file, hparams.yaml
            path.unlink(missing_ok=True)
        release_run_folders()  # the folder lock; a folder this attempt created, if empty
        with contextlib.suppress(OSError):
            log_dir.rmdir()  # a folder this attempt created (only when empty)


def _files(folder: Path) -> set[Path]:
    return {path for path in folder.glob("*") if path.is_file()} if folder.is_dir() else set()
