"""Optimiser settings that live on the parameters (S4's ``_optim`` convention).

The model, not the trainer, says which parameters are special: an SSM kernel calls
:func:`tag_optim` on its A, B (and optionally dt) parameters, and
:func:`pspikessm.optim.parameter_groups` turns the tags into AdamW parameter groups. Here, in
``models/``, so that a model is built without importing the training code.
"""

from __future__ import annotations

from torch import nn

OPTIM_ATTR = "_optim"


def tag_optim(parameter: nn.Parameter, **settings: float) -> nn.Parameter:
    """Attach optimizer settings (for example ``lr=1e-3, weight_decay=0.0``) to a parameter."""
    setattr(parameter, OPTIM_ATTR, dict(settings))
    return parameter


#: Normalisation layers, whose parameters take no weight decay in the official optimiser groups.
NORM_LAYERS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
)


def exempt_norms_and_biases(module: nn.Module) -> None:
    """Weight decay 0 for every normalisation parameter and every parameter named ``*bias``
    in ``module``: the official optimiser groups (S4's ``add_optimizer_hooks``), which apply
    to the backbone's blocks and final norm but not to the encoder and decoder."""
    for submodule in module.modules():
        for name, parameter in submodule.named_parameters(recurse=False):
            if name.endswith("bias") or isinstance(submodule, NORM_LAYERS):
                settings = getattr(parameter, OPTIM_ATTR, {})
                tag_optim(parameter, **{**settings, "weight_decay": 0.0})
