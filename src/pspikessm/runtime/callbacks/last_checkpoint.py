"""ModelCheckpoint that refreshes ``last.ckpt`` at every save point, improved or not."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint


class LastEveryEpochCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` whose ``last.ckpt`` never lags.

    Lightning >= 2.6 rewrites ``last.ckpt`` only when a top-k checkpoint was written at the
    same step, so after the monitored metric stops improving, ``last.ckpt`` stays at the best
    epoch and ``fit --ckpt_path last`` would silently rewind the run. Here ``last.ckpt`` is
    rewritten at every save point (each validation, or each epoch end when the checkpoint is
    taken there); the top-k checkpoints behave exactly as in ModelCheckpoint. A
    ``fast_dev_run`` writes nothing (Lightning 2.6 would write ``last.ckpt`` at the end of
    training, into ``./checkpoints`` since a dry run has no logger folder).
    """

    # ModelCheckpoint's private methods (_should_save_on_train_epoch_end, _save_last_checkpoint,
    # _last_global_step_saved, ...) are used below: checked with Lightning 2.6.6.

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._refresh_last(trainer)

    def _refresh_last(self, trainer: L.Trainer) -> None:
        if not self.save_last or self._should_skip_saving_checkpoint(trainer):
            return
        if self._last_global_step_saved != trainer.global_step:  # nothing written at this step
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
