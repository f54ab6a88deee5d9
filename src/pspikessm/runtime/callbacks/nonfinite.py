"""Stop training at the first non-finite loss or weight, before it reaches a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from pspikessm.runtime.checkpoint_checks import (
    checked_problem,
    nonfinite_tensors,
    nonfinite_weights,
)

LOSS_STOP = "training stopped before this step changed the weights"
WEIGHTS_STOP = "training stopped before this state was validated or saved"
SAVE_STOP = "that checkpoint was not written"


#: Inputs beyond this magnitude are named as the likely cause of a non-finite loss or weight
#: (the SSM sums L steps of them, squared norms square them; data the model reads well is
#: standardised to about 1).
LARGE_INPUT = 1e4


def input_magnitude(batch: Any) -> float | None:
    """The largest ``|value|`` among the floating-point tensors of ``batch`` (nested tuples,
    lists, dicts; inf for a NaN or an infinity); None when it holds none (token ids)."""
    if isinstance(batch, torch.Tensor):
        if not batch.is_floating_point() or batch.numel() == 0:
            return None
        values = batch.detach()
        return float(values.abs().max()) if bool(torch.isfinite(values).all()) else float("inf")
    parts = batch.values() if isinstance(batch, dict) else batch
    if not isinstance(parts, (list, tuple, type({}.values()))):
        return None
    found = [m for part in parts if (m := input_magnitude(part)) is not None]
    return max(found, default=None)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss or weight."""


class NonFiniteLossStop(Callback):
    """Raise :class:`NonFiniteLossError` at a NaN or infinite training loss or weight.

    - The loss is checked before the backward pass: the optimiser never applies that step.
    - The weights are checked after every training batch (after its optimiser step): a step
      with a finite loss can still make them non-finite (a huge learning rate, no clipping).
      Training stops there, before any validation or checkpoint of that state.
    - Every checkpoint's ``state_dict`` is checked before it is written (its parameters for
      NaN and infinities, its other states, such as a running maximum that starts at -inf,
      for NaN): a bad one is never written, so it never replaces a good ``last.ckpt``.

    So every checkpoint on disk holds finite weights. Under DDP the processes agree first
    (one scalar all-reduce per check), so all of them stop at the same step. The message names
    the global step, epoch and batch, the checkpoint to resume from (the newest this run
    wrote, or the one it resumed from, each read and checked finite when the message is
    written: a file it cannot vouch for is never called good) and what to change: the input
    scale when the batch's inputs exceed :data:`LARGE_INPUT` in magnitude, else the learning
    rate, ``trainer.gradient_clip_val`` or ``32-true``.
    """

    _batch: Any = None  # the training batch in progress, for the advice of a stop

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._batch = batch

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if self._agreed(trainer, bad):
            self._stop(trainer, f"non-finite training loss ({loss.item()})", LOSS_STOP)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        bad = nonfinite_tensors(dict(pl_module.named_parameters()))
        if self._agreed(trainer, bool(bad)):
            what = f"non-finite weights after the optimiser step ({len(bad)} tensors, e.g. "
            self._stop(trainer, what + (f"{bad[:3]})" if bad else "in another process)"))
        self._batch = None

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        bad = nonfinite_weights(checkpoint, parameter_names(pl_module))
        if bad:  # each process saves its own state; rank zero writes it
            self._stop(trainer, f"non-finite weights in a checkpoint ({bad[:3]})", SAVE_STOP)

    @staticmethod
    def _agreed(trainer: L.Trainer, bad: bool) -> bool:
        if trainer.world_size > 1:
            return trainer.strategy.reduce_boolean_decision(bad, all=False)
        return bad

    @staticmethod
    def good_checkpoint(trainer: L.Trainer) -> str:
        """The newest checkpoint of this run that is readable and finite, checked now: this
        attempt's last save, or the one it resumed from."""
        candidates = [
            getattr(trainer.checkpoint_callback, "last_model_path", ""),
            trainer.ckpt_path,
        ]
        parameters = parameter_names(trainer.lightning_module)
        for path in dict.fromkeys(c for c in candidates if c):
            if checked_problem(path, parameters) is None:
                return str(path)
        return "none (no checkpoint of this run is readable and finite)"

    def _stop(self, trainer: L.Trainer, what: str, stopped: str = WEIGHTS_STOP) -> None:
        # fit_loop.epoch_loop.batch_idx: Lightning internals, checked with Lightning 2.6.6.
        batch = trainer.fit_loop.epoch_loop.batch_idx
        raise NonFiniteLossError(
            f"{what} at global step {trainer.global_step} (epoch {trainer.current_epoch}, "
            f"batch {batch}); {stopped}. Last good checkpoint: "
            f"{self.good_checkpoint(trainer)}. {self.advice()}"
        )

    def advice(self) -> str:
        """What to change: the input scale when the batch's inputs are huge (3e38 in a CSV
        read without normalisation), else the learning rate, clipping or precision."""
        magnitude = input_magnitude(self._batch)
        if magnitude == float("inf"):
            return (
                "The inputs of this batch hold NaN or infinite values: check the data (its "
                "reader, its normalisation), then train again."
            )
        if magnitude is not None and magnitude > LARGE_INPUT:
            return (
                f"The inputs of this batch reach |x| = {magnitude:.3g}: their scale is the "
                "likely cause. Standardise the data (each channel to mean 0, std 1; a data "
                "module option such as normalize: true), then train again."
            )
        return (
            "Resume with --ckpt_path last after lowering model.lr, setting "
            "trainer.gradient_clip_val, or using trainer.precision=32-true."
        )


def parameter_names(module: L.LightningModule) -> set[str]:
    """The names of ``module``'s parameters (its ``state_dict`` keys that are weights)."""
    return {name for name, _ in module.named_parameters()}
