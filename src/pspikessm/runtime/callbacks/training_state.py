"""What a checkpoint carries beyond Lightning's: the spike stream and the optimiser settings."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from pspikessm.runtime.resume_checks import (
    OPTIMIZER_KEY,
    check_optimizer,
    optimizer_settings,
    use_fresh_optimizers,
)
from pspikessm.runtime.rng import offset_for_rank, rng_state, set_rng_state

RNG_KEY = "rng_state"  # checkpoint entry: rng.rng_state() of rank 0


class TrainingStateCheckpoint(Callback):
    """Saves and restores the training state the LightningModule does not own.

    - **Spike stream** (:mod:`pspikessm.runtime.rng`): every checkpoint carries the random
      generators' states; a resumed ``fit`` continues them when training starts (after the
      RNG-isolated sanity check and the restore), so a resumed one-process run draws exactly
      the spikes the uninterrupted run would have drawn. Then processes other than rank 0 move
      to spike streams of their own.
    - **Optimiser settings** (:mod:`pspikessm.runtime.resume_checks`): read when the optimisers
      are new (``on_fit_start``, before Lightning restores the checkpoint's states into them),
      saved with every checkpoint, and compared on resume: other settings are an error unless
      the model's ``reset_optimizer`` is set, then the checkpoint's optimiser and schedule
      states are replaced by fresh ones at its step.
    """

    def __init__(self) -> None:
        self.optimizer_settings: dict[str, Any] | None = None
        self._checkpoint: dict[str, Any] | None = None
        self._rng_state: dict[str, Any] | None = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RNG_KEY] = rng_state()
        if self.optimizer_settings is not None:
            checkpoint[OPTIMIZER_KEY] = self.optimizer_settings

    def on_load_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        # Lightning 2.6 calls this only for checkpoints with callback states (every one a fit
        # writes), after the module's weights are loaded and before on_fit_start (strategies
        # that restore after setup, such as FSDP, call it after on_fit_start: the optimiser
        # check then runs here).
        if trainer.state.fn == "fit":
            self._checkpoint = checkpoint
            self._rng_state = checkpoint.get(RNG_KEY)
            if self.optimizer_settings is not None:
                self._check_optimizer(trainer, pl_module)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.optimizer_settings = optimizer_settings(trainer)
        self._check_optimizer(trainer, pl_module)
        if trainer.ckpt_path is not None:
            forget_early_train_loader(trainer)

    def _check_optimizer(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        checkpoint, self._checkpoint = self._checkpoint, None
        reset = bool(pl_module.hparams.get("reset_optimizer", False))
        if checkpoint is not None and check_optimizer(
            checkpoint.get(OPTIMIZER_KEY), self.optimizer_settings, reset
        ):
            use_fresh_optimizers(trainer, checkpoint)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._rng_state is not None:
            set_rng_state(self._rng_state)
            self._rng_state = None
        offset_for_rank(trainer.global_rank)


def forget_early_train_loader(trainer: L.Trainer) -> None:
    """Drop a training loader built before the checkpoint's loop state is restored.

    ``trainer.estimated_stepping_batches`` (a schedule's length when ``model.total_steps`` is
    unset) builds the training loader inside ``configure_optimizers``, before Lightning
    restores the loops; the fit loop then keeps that loader and never gives it the saved
    position, so a run resumed mid-epoch would start the epoch from its first batch. Dropped
    here (``on_fit_start``, after the optimisers, before the restore), the loader is built
    again when training starts and gets its saved position, as without the estimate.
    """
    # fit_loop._combined_loader: Lightning internals, checked with Lightning 2.6.6 (its
    # setup_data() builds the loader only when this is None).
    trainer.fit_loop._combined_loader = None
