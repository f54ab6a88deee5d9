"""Stop training at the first non-finite loss, before it reaches the weights."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""


class NonFiniteLossStop(Callback):
    """Raise :class:`NonFiniteLossError` when a training loss is NaN or infinite.

    The check runs before the backward pass, so the optimizer never applies the bad step: the
    weights in memory and every checkpoint on disk (``last.ckpt`` included) are the last good
    ones. Under DDP the processes agree first (one scalar all-reduce per step), so all of them
    stop at the same step instead of hanging in the gradient all-reduce.

    The message names the global step, epoch and batch, and the checkpoint to resume from
    (lower the learning rate, raise ``trainer.gradient_clip_val`` or use ``32-true``).
    """

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return
        checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none yet"
        raise NonFiniteLossError(
            f"non-finite training loss ({loss.item()}) at global step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {trainer.fit_loop.epoch_loop.batch_idx}); "
            f"training stopped before this step changed the weights. Last good checkpoint: "
            f"{checkpoint}. Resume with --ckpt_path last after lowering model.lr, setting "
            f"trainer.gradient_clip_val, or using trainer.precision=32-true."
        )
