"""What the SSM kernels share: the step size dt and the optimiser settings of their parameters."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.optim_tags import tag_optim
from pspikessm.models.settings import BlockSettings

DT_TRANSFORMS = ("exp", "softplus")


def init_inv_dt(d_model: int, settings: BlockSettings, transform: str) -> torch.Tensor:
    """The raw step parameter (H,) for ``dt = transform(inv_dt)``, dt log-uniform in
    [dt_min, dt_max] (S4's ``init_dt``)."""
    if transform not in DT_TRANSFORMS:
        raise ValueError(
            f"block.kernel.init_args.dt_transform={transform!r}: expected one of {DT_TRANSFORMS}"
        )
    log_min, log_max = math.log(settings.dt_min), math.log(settings.dt_max)
    log_dt = torch.rand(d_model) * (log_max - log_min) + log_min
    if transform == "exp":
        return log_dt
    return torch.log(torch.expm1(torch.exp(log_dt)))  # the inverse of softplus


def dt_of(inv_dt: torch.Tensor, transform: str) -> torch.Tensor:
    """``dt`` (H,) from its raw parameter: ``exp`` (S4D) or ``softplus`` (S4's default)."""
    return torch.exp(inv_dt) if transform == "exp" else F.softplus(inv_dt)


def tag_kernel_parameters(
    settings: BlockSettings, ssm: list[nn.Parameter], inv_dt: nn.Parameter, c: nn.Parameter
) -> None:
    """Optimiser settings of a kernel's parameters, as the official layer ``lr`` sets them.

    ``ssm`` (A, B, P): ``ssm_lr``, no weight decay; dt: ``dt_lr`` (None: global), no weight
    decay; C: ``c_lr`` (None: global) with the global weight decay.
    """
    for parameter in ssm:
        tag_optim(parameter, lr=settings.ssm_lr, weight_decay=0.0)
    dt_rate = {} if settings.dt_lr is None else {"lr": settings.dt_lr}
    tag_optim(inv_dt, weight_decay=0.0, **dt_rate)
    if settings.c_lr is not None:
        tag_optim(c, lr=settings.c_lr)


class StackParameters(torch.autograd.Function):
    """``torch.stack`` of G tensors (G, ...), whose backward makes the gradient contiguous once
    (one op) and hands each tensor its slice: contiguous, so autograd keeps it as the
    parameter's ``.grad``, where slices of a strided gradient (the lag-0 tap's ``D``, the
    imaginary half of a complex parameter) cost one copy per parameter."""

    @staticmethod
    def forward(ctx, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.stack(tensors)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return grad.contiguous().unbind(0)


def stack_parameters(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """G tensors of one shape → (G, ...): :class:`StackParameters`; one tensor is a view."""
    if len(tensors) == 1:
        return tensors[0].unsqueeze(0)
    return StackParameters.apply(*tensors)
