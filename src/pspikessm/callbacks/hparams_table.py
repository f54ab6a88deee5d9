"""The HPARAMS tab of TensorBoard with the columns that compare runs.

Lightning logs every ``__init__`` argument of the model and the data module, flattened:
LightningCLI's ``_instantiator``, ``backbone/class_path`` and dozens of switches nobody
compares lead the table. :func:`write_hparams` writes instead one value per name of
:data:`COMPARED` (found wherever it is in the nested arguments) and, as the metric columns,
:data:`METRICS`. ``hparams.yaml`` in the run folder still holds every argument.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from pspikessm.runtime.lightning_internals import skip_lightning_hparams_logging

HP_METRIC = "hp_metric"

#: Columns of the HPARAMS tab, in order. ``task`` is the run's name (the logger's ``name``,
#: e.g. ``lra-listops``), ``branches`` the number of SSM branches of a block (2 with
#: ``second_branch``), ``seed`` the ``seed_everything`` seed, ``precision`` the trainer's;
#: every other name is looked up in the model's and the data module's arguments, at any depth
#: (``d_model`` in ``backbone.init_args``, ``d_state`` in its ``block``, ...).
COMPARED = (
    "task",
    "lr",
    "weight_decay",
    "d_model",
    "n_layers",
    "d_state",
    "kernel",
    "neuron",
    "branches",
    "dropout",
    "batch_size",
    "seed",
    "precision",
)

#: Metric columns beside ``hp_metric``: best val/acc (SequenceClassifier's ``val/acc_best``),
#: test/acc, the mean firing rate at validation (FiringRateMonitor) and the energy ratio
#: non-spiking / spiking (EnergyEstimate, at test).
METRICS = (HP_METRIC, "val/acc_best", "test/acc", "sparsity/val/rate", "energy/saving")


def all_arguments(trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
    """The model's and the data module's ``__init__`` arguments, as Lightning would log them."""
    arguments = dict(pl_module.hparams_initial)
    if trainer.datamodule is not None:
        arguments.update(trainer.datamodule.hparams_initial)
    return {k: v for k, v in arguments.items() if k not in ("_class_path", "_instantiator")}


def _found(arguments: Any, name: str) -> Iterator[Any]:
    """Values of key ``name`` in the nested mappings and lists of ``arguments``, outer first."""
    if isinstance(arguments, Mapping):
        if name in arguments:
            yield arguments[name]
        children = arguments.values()
    elif isinstance(arguments, Sequence) and not isinstance(arguments, str):
        children = arguments
    else:
        return
    for child in children:
        yield from _found(child, name)


def compared_values(
    trainer: L.Trainer, arguments: dict[str, Any], names: Sequence[str] = COMPARED
) -> dict[str, bool | int | float | str]:
    """Name → value of the columns ``names`` for this run; a name without a value is left out."""
    special = {
        "task": trainer.logger.name if trainer.logger is not None else None,
        "seed": _int_or_none(os.environ.get("PL_GLOBAL_SEED")),
        "precision": str(trainer.precision),
        "branches": next((2 if v else 1 for v in _found(arguments, "second_branch")), None),
    }
    values = {}
    for name in names:
        value = special[name] if name in special else next(_found(arguments, name), None)
        if isinstance(value, Mapping) and "name" in value:  # a typed choice: {name, init_args}
            value = value["name"]
        if isinstance(value, (bool, int, float, str)):
            values[name] = value
        elif value is not None:
            values[name] = str(value)
    return values


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def takes_over_hparams(trainer: L.Trainer, pl_module: L.LightningModule) -> bool:
    """Stop Lightning's own hyperparameter logging of this run when a TensorBoardLogger gets
    :func:`write_hparams` instead; whether it did."""
    if not any(isinstance(logger, TensorBoardLogger) for logger in trainer.loggers):
        return False
    skip_lightning_hparams_logging(pl_module, trainer.datamodule)
    return True


@rank_zero_only
def write_hparams(
    trainer: L.Trainer, pl_module: L.LightningModule, names: Sequence[str] = COMPARED
) -> None:
    """The HPARAMS entry of this run: the :func:`compared_values` and the :data:`METRICS`
    columns, with ``hp_metric`` -1 until there is a value (as Lightning does). Loggers other
    than TensorBoard get every argument, as Lightning would give them."""
    arguments = all_arguments(trainer, pl_module)
    columns = compared_values(trainer, arguments, names)
    for logger in trainer.loggers:
        if not isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(arguments)
            continue
        logger.hparams.update(arguments)  # hparams.yaml: every argument
        writer = logger.experiment._get_file_writer()
        for summary in hparams_summaries(columns, dict.fromkeys(METRICS, 0.0)):
            writer.add_summary(summary)
        logger.log_metrics({HP_METRIC: -1}, step=0)
