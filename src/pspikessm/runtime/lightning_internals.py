"""The package's uses of Lightning's private state outside run safety, in one place.

Each is checked with Lightning 2.6.6; a Lightning upgrade looks here (and in the rest of
:mod:`pspikessm.runtime`) first.
"""

from __future__ import annotations

import lightning as L


def skip_lightning_hparams_logging(
    module: L.LightningModule, datamodule: L.LightningDataModule | None
) -> None:
    """Stop Lightning from logging the hyperparameters of ``module`` and ``datamodule``
    itself (the run summary writes its own HPARAMS entry instead).

    Sets their ``_log_hyperparams``, which Lightning 2.6.6 reads after ``setup``; the public
    way, ``save_hyperparameters(logger=False)``, would stop it for every run, with or without
    the callback that replaces it.
    """
    module._log_hyperparams = False
    if datamodule is not None:
        datamodule._log_hyperparams = False
