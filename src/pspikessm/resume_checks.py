"""What a checkpoint must agree on with the configured run before it is loaded.

- **Architecture**: the backbone's ``settings`` (a nested dict) are saved in every checkpoint;
  loading into a model built with other settings is an error naming each differing setting,
  for every subcommand (``fit``, ``validate``, ``test``, ``predict``, ``energy``).
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

ARCHITECTURE_KEY = "backbone_settings"  # checkpoint entry: the backbone's settings
OPTIMIZER_KEY = "optimizer_settings"  # checkpoint entry: see optimizer_settings()

#: ReduceLROnPlateau options (its state_dict restores them over the current config's).
_PLATEAU_OPTIONS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown")


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, Mapping) and not value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def setting_differences(
    saved: Any, current: Any, path: str = "", current_name: str = "model"
) -> list[str]:
    """``"<key.path>: checkpoint X, model Y"`` for every leaf in which two nested dicts differ.

    Keys on either side are compared; an absent key, None and an empty dict all mean "not
    set" (an option left at its default), and lists equal tuples with the same items.
    """
    if _unset(saved) and _unset(current):
        return []
    if isinstance(saved, Mapping) or isinstance(current, Mapping):
        if not all(isinstance(v, Mapping) or _unset(v) for v in (saved, current)):
            return [f"{path or '(settings)'}: checkpoint {saved!r}, {current_name} {current!r}"]
        saved, current = dict(saved or {}), dict(current or {})
        return [
            difference
            for key in sorted(saved.keys() | current.keys(), key=str)
            for difference in setting_differences(
                saved.get(key),
                current.get(key),
                f"{path}.{key}" if path else str(key),
                current_name,
            )
        ]
    if _same(saved, current):
        return []
    return [f"{path}: checkpoint {saved!r}, {current_name} {current!r}"]


def check_architecture(saved: Any, current: Any, checkpoint_path: Any = None) -> None:
    """Raise ValueError naming every setting in which ``saved`` (from a checkpoint) and
    ``current`` (the configured backbone's ``settings``) differ."""
    if saved is None or current is None:  # a backbone that does not record its settings
        return
    differences = setting_differences(saved, current)
    if not differences:
        return
    where = f" {checkpoint_path}" if checkpoint_path else ""
    raise ValueError(
        f"checkpoint{where} was trained with another architecture. Differing settings "
        "(model.backbone.init_args.<setting>): " + "; ".join(differences) + ". Set them to "
        "the checkpoint's values (the run's config.yaml has them all: --config <run>/config.yaml), "
        "or load a checkpoint of this architecture."
    )


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


class ResumeGuard:
    """A LightningModule's side of these checks (see :class:`pspikessm.module.SequenceClassifier`).

    ``save`` in ``on_save_checkpoint``, ``load`` in ``on_load_checkpoint`` (it keeps a fit's
    checkpoint until the optimisers exist), ``fit_start`` in ``on_fit_start`` (the optimisers
    are built there and not yet restored).
    """

    def __init__(self) -> None:
        self.optimizer_settings: dict[str, Any] | None = None
        self._checkpoint: dict[str, Any] | None = None

    def save(self, checkpoint: dict[str, Any], backbone: Any) -> None:
        checkpoint[ARCHITECTURE_KEY] = getattr(backbone, "settings", None)
        if self.optimizer_settings is not None:
            checkpoint[OPTIMIZER_KEY] = self.optimizer_settings

    def load(self, checkpoint: dict[str, Any], backbone: Any, trainer: L.Trainer | None) -> None:
        path = trainer.ckpt_path if trainer is not None else None
        check_architecture(
            checkpoint.get(ARCHITECTURE_KEY), getattr(backbone, "settings", None), path
        )
        if trainer is not None and trainer.state.fn == "fit":
            self._checkpoint = checkpoint

    def fit_start(self, trainer: L.Trainer, reset_optimizer: bool) -> None:
        self.optimizer_settings = optimizer_settings(trainer)
        checkpoint, self._checkpoint = self._checkpoint, None
        if checkpoint is not None and check_optimizer(
            checkpoint.get(OPTIMIZER_KEY), self.optimizer_settings, reset_optimizer
        ):
            use_fresh_optimizers(trainer, checkpoint)
