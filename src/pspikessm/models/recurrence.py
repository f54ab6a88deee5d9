"""Recurrent (step-by-step) form of the SSM kernels, for streaming inference.

``h[t] = Ā h[t-1] + B̄ s[t]``, ``u[t] = C h[t]``: the same discretised system whose impulse
response is the convolution kernel, so the convolution and the recurrence agree up to
floating-point rounding. Only causal kernels have a recurrent form here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pspikessm.models.diagonal_kernel import DiagonalSSMKernel
from pspikessm.models.dplr_kernel import DPLRSSMKernel


class DiagonalRecurrence:
    """Diagonal state: ``h`` (B, H, N/2) complex, ``u = 2 Re(C h)`` (ZOH, as the kernel)."""

    def __init__(self, kernel: DiagonalSSMKernel) -> None:
        _, self.a_bar, self.b_bar = kernel.discretize()  # (H N/2) each
        self.c = kernel.c_complex[0]  # (H N/2) the causal channel

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.a_bar.new_zeros((batch, *self.a_bar.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, H) real → ``u`` (B, H) real and the next state."""
        state = self.a_bar * state + self.b_bar * x.unsqueeze(-1)  # (B H N/2)
        return 2.0 * (state * self.c).sum(-1).real.to(x.dtype), state


class DenseRecurrence:
    """Dense state: ``h`` (B, H, N) complex with ``Ā`` (H, N, N) (DPLR, bilinear)."""

    def __init__(self, kernel: DPLRSSMKernel) -> None:
        self.a_bar, self.b_bar, c = kernel.discretize()
        self.c = c[0]  # (H N) the causal channel

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.b_bar.new_zeros((batch, *self.b_bar.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, H) real → ``u`` (B, H) real and the next state."""
        state = torch.einsum("hnm,bhm->bhn", self.a_bar, state) + self.b_bar * x.unsqueeze(-1)
        return (state * self.c).sum(-1).real.to(x.dtype), state


#: Kernel class → its recurrent form.
RECURRENCES: dict[type[nn.Module], Callable[[nn.Module], object]] = {
    DiagonalSSMKernel: DiagonalRecurrence,
    DPLRSSMKernel: DenseRecurrence,
}


def recurrence_of(kernel: nn.Module) -> DiagonalRecurrence | DenseRecurrence:
    """The recurrent form of ``kernel``; the error names the kernels that have one."""
    build = RECURRENCES.get(type(kernel))
    if build is None:
        names = sorted(cls.__name__ for cls in RECURRENCES)
        raise ValueError(
            f"{type(kernel).__name__} has no recurrent (step) form; kernels with one: {names}"
        )
    return build(kernel)
