"""What a checkpoint must agree on with the configured run before it is loaded.

- **Architecture**: see :mod:`pspikessm.models.architecture` (the model's own check, for
  every way a checkpoint is loaded).
- **Optimiser**: the settings the optimisers and schedules were built with (each parameter
  group's base learning rate, betas, weight decay, ...; each schedule's kind and options) are
  saved too. Resuming with other settings would silently keep the checkpoint's optimiser state
  and rates, so it is an error unless ``model.reset_optimizer`` is set; then
  :func:`use_fresh_optimizers` replaces the checkpoint's optimiser and schedule states by
  fresh ones from the current config, positioned at the checkpoint's step.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
from torch.optim.lr_scheduler import ReduceLROnPlateau

from pspikessm.models.architecture import setting_differences

OPTIMIZER_KEY = "optimizer_settings"  # checkpoint entry: see optimizer_settings()

#: ReduceLROnPlateau options (its state_dict restores them over the current config's).
_PLATEAU_OPTIONS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown")


def optimizer_settings(trainer: L.Trainer) -> dict[str, Any]:
    """The settings of ``trainer``'s optimisers and schedules, read when they are new.

    Call it before a checkpoint is restored into them (``on_fit_start``): the base rate of a
    group is its ``initial_lr`` (set by step schedules) or, still, its ``lr``.
    """
    settings: dict[str, Any] = {}
    for index, optimizer in enumerate(trainer.optimizers):
        groups = {}
        for number, group in enumerate(optimizer.param_groups):
            options = {k: v for k, v in group.items() if k not in ("params", "lr", "initial_lr")}
            groups[str(number)] = {"lr": group.get("initial_lr", group["lr"]), **options}
        settings[f"optimizer{index}"] = {"class": type(optimizer).__name__, "groups": groups}
    for index, config in enumerate(trainer.lr_scheduler_configs):
        scheduler = config.scheduler
        entry = {
            "class": type(scheduler).__name__,
            "interval": config.interval,
            "frequency": config.frequency,
        }
        if isinstance(scheduler, ReduceLROnPlateau):
            entry.update({name: getattr(scheduler, name) for name in _PLATEAU_OPTIONS})
            entry["min_lrs"] = list(scheduler.min_lrs)
        settings[f"schedule{index}"] = entry
    return settings


#: How an optimiser computes its update, not what it computes (the fused AdamW on a GPU, the
#: for-each one on CPU): a run may resume across them.
_IMPLEMENTATION_OPTIONS = ("fused", "foreach", "capturable", "differentiable")


def _training_settings(settings: Any) -> Any:
    """``settings`` (of :func:`optimizer_settings`) without the implementation options."""
    if not isinstance(settings, Mapping):
        return settings
    out = {}
    for name, entry in settings.items():
        if isinstance(entry, Mapping) and isinstance(entry.get("groups"), Mapping):
            groups = {
                number: {k: v for k, v in group.items() if k not in _IMPLEMENTATION_OPTIONS}
                for number, group in entry["groups"].items()
            }
            entry = {**entry, "groups": groups}
        out[name] = entry
    return out


def check_optimizer(saved: Any, current: dict[str, Any], reset: bool) -> bool:
    """Whether to replace the checkpoint's optimiser state (``reset`` and the settings differ);
    raises ValueError when they differ and ``reset`` is off."""
    if saved is None:  # a checkpoint from before these settings were recorded
        return False
    saved, current = _training_settings(saved), _training_settings(current)
    differences = setting_differences(saved, current, current_name="config")
    if not differences:
        return False
    if reset:
        return True
    raise ValueError(
        "the optimiser settings differ from the checkpoint's: " + "; ".join(differences) + ". "
        "A resumed run restores the checkpoint's optimiser and schedule, so these would be "
        "ignored. To apply them, add --model.reset_optimizer true (weights, step counters and "
        "the spike stream are restored; the optimiser and schedule are built anew from the "
        "current settings, at the checkpoint's step); or resume with the run's own settings."
    )


def use_fresh_optimizers(trainer: L.Trainer, checkpoint: dict[str, Any]) -> None:
    """Replace ``checkpoint``'s optimiser and schedule states by those of ``trainer``'s new
    ones (no moment estimates), with each step schedule moved to the checkpoint's step.

    Lightning then restores these states, so the run continues with the current settings.
    Step schedules are moved by setting their step count, which is exact for schedules whose
    rate is a function of the step (``LambdaLR``, the project's schedules); plateau schedules
    start afresh.
    """
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        if isinstance(scheduler, ReduceLROnPlateau):
            continue
        count = checkpoint["global_step"] if config.interval == "step" else checkpoint["epoch"]
        scheduler.last_epoch = count // max(1, config.frequency) - 1
        with warnings.catch_warnings():  # "lr_scheduler.step() before optimizer.step()"
            warnings.simplefilter("ignore", UserWarning)
            scheduler.step()
    checkpoint["optimizer_states"] = [optimizer.state_dict() for optimizer in trainer.optimizers]
    checkpoint["lr_schedulers"] = [c.scheduler.state_dict() for c in trainer.lr_scheduler_configs]
