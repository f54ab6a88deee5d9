"""The TensorBoard writer of a trainer, for what only TensorBoard shows (figures, texts,
histograms, layouts); scalars go through ``pl_module.log`` or ``logger.log_metrics``."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.tensorboard import SummaryWriter


def tensorboard_writer(trainer: L.Trainer) -> SummaryWriter | None:
    """The SummaryWriter of the trainer's first TensorBoardLogger, or None without one."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None
