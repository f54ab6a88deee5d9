"""The parameter groups built from the optimiser settings the parameters carry, AdamW, and the
learning-rate schedules (:func:`configure_adamw`).

The model tags its special parameters itself (:func:`tag_optim`, S4's ``_optim`` convention,
defined in :mod:`pspikessm.models.optim_tags` and importable from here too);
:func:`parameter_groups` turns the tags into AdamW parameter groups.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, get_args

import lightning as L
import torch
from torch import nn

# The tagging API is documented under this module's name (docs/forking.md): re-exported.
from pspikessm.models.optim_tags import (
    OPTIM_ATTR,
    exempt_norms_and_biases as exempt_norms_and_biases,
    tag_optim as tag_optim,
)


def parameter_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, object]]:
    """Group ``model``'s trainable parameters by their optimizer tags.

    Untagged parameters form the first group with the global ``lr`` and ``weight_decay``;
    every distinct tag (a dict of settings) forms one more group that overrides them.
    """
    default: list[nn.Parameter] = []
    tagged: dict[tuple[tuple[str, float], ...], list[nn.Parameter]] = {}
    for parameter in model.parameters():
        if not parameter.requires_grad:
            continue
        settings = getattr(parameter, OPTIM_ATTR, None)
        if settings is None:
            default.append(parameter)
        else:
            tagged.setdefault(tuple(sorted(settings.items())), []).append(parameter)
    groups: list[dict[str, object]] = [{"params": default, "lr": lr, "weight_decay": weight_decay}]
    for key, params in tagged.items():
        group: dict[str, object] = {"params": params, "lr": lr, "weight_decay": weight_decay}
        group.update(dict(key))
        groups.append(group)
    return [group for group in groups if group["params"]]


def build_adamw(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    trainer: object | None = None,
) -> torch.optim.AdamW:
    """AdamW over :func:`parameter_groups` of ``model``; the fused (one-kernel) update when
    every parameter is on a GPU, where the for-each update launches a few kernels per group.

    Not fused when ``trainer`` (a Lightning trainer) clips gradients under a mixed precision:
    Lightning refuses to clip for an optimiser that unscales gradients itself, as the fused
    one does."""
    groups = parameter_groups(model, lr, weight_decay)
    on_gpu = all(p.is_cuda for group in groups for p in group["params"])
    fused = on_gpu and fused_update_allowed(trainer)
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused or None)


def fused_update_allowed(trainer: object | None) -> bool:
    """False when ``trainer`` clips gradients under a mixed precision (see :func:`build_adamw`)."""
    clips = bool(getattr(trainer, "gradient_clip_val", None))
    return not (clips and str(getattr(trainer, "precision", "")).endswith("-mixed"))


def warmup_cosine_lambda(
    warmup_steps: int, total_steps: int, min_factor: float = 0.0
) -> Callable[[int], float]:
    """LR factor: linear warm-up from 0 over ``warmup_steps``, then cosine decay to ``min_factor``.

    Applied per optimizer step, so each group keeps its own peak learning rate.
    """

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, progress)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def periodic_cosine_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR factor of transformers' ``get_cosine_schedule_with_warmup`` (the authors' schedule):
    linear warm-up from 0, then ``(1 + cos(π t))/2`` with ``t`` the progress past warm-up,
    *not* stopped at ``total_steps``: later the rate rises again, with period
    ``2 (total_steps - warmup_steps)``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return step / max(1, warmup_steps)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return factor


#: The learning-rate schedules of ``model.scheduler`` (:func:`configure_adamw`).
Scheduler = Literal["cosine", "cosine_periodic", "plateau", "constant"]
SCHEDULERS = get_args(Scheduler)


def check_schedule(scheduler: str, warmup_steps: int, total_steps: int | None) -> None:
    """A clear error, naming the option, for a schedule :func:`configure_adamw` cannot build."""
    if scheduler not in SCHEDULERS:
        raise ValueError(f"model.scheduler={scheduler!r}: expected one of {SCHEDULERS}")
    if warmup_steps < 0:
        raise ValueError(f"model.warmup_steps={warmup_steps}: expected an integer >= 0")
    if total_steps is not None and total_steps < 1:
        raise ValueError(f"model.total_steps={total_steps}: expected an integer >= 1")


def configure_adamw(module: L.LightningModule, hp: Any) -> Any:
    """``configure_optimizers``' answer for :class:`~pspikessm.module.SequenceClassifier`:
    :func:`build_adamw` and the schedule ``hp.scheduler`` (``hp``: the module's hparams).

    ``cosine``: linear warm-up, then cosine decay to ``min_lr_factor * lr`` at ``total_steps``
    (the trainer's estimate when None), constant after; ``cosine_periodic``: the authors'
    (transformers' cosine with warm-up, which keeps running past ``total_steps``); both step
    per optimiser step. ``plateau``: reduce on plateau of ``hp.monitor`` (maximised), per
    epoch. ``constant``: no schedule.
    """
    try:
        trainer = module.trainer
    except RuntimeError:  # no trainer attached (a module stepped by hand)
        trainer = None
    optimizer = build_adamw(module, hp.lr, hp.weight_decay, hp.betas, trainer)
    if hp.scheduler == "constant":
        return optimizer
    if hp.scheduler == "plateau":
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max", factor=hp.plateau_factor, patience=hp.plateau_patience
        )
        schedule = {"scheduler": plateau, "monitor": hp.monitor, "interval": "epoch"}
        return {"optimizer": optimizer, "lr_scheduler": schedule}
    total = hp.total_steps or int(module.trainer.estimated_stepping_batches)
    if hp.scheduler == "cosine_periodic":
        factor = periodic_cosine_lambda(hp.warmup_steps, total)
    else:
        factor = warmup_cosine_lambda(hp.warmup_steps, total, hp.min_lr_factor)
    cosine = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
