"""SSM neurons applied to a whole sequence: ``u = K̄ * x + D x`` by FFT convolution."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.diagonal_kernel import DiagonalSSMKernel
from pspikessm.models.dplr_kernel import DPLRSSMKernel
from pspikessm.models.fft_conv import fft_conv, two_sided_kernel
from pspikessm.models.recurrence import recurrence_of

KERNELS: dict[str, type[nn.Module]] = {"diag": DiagonalSSMKernel, "dplr": DPLRSSMKernel}


def kernel_class(name: str) -> type[nn.Module]:
    """The kernel module registered as ``name``; the error lists the valid names."""
    try:
        return KERNELS[name]
    except KeyError:
        raise ValueError(f"unknown SSM kernel {name!r}; valid kernels: {sorted(KERNELS)}") from None


class SSMConvolution(nn.Module):
    """H SSM neurons with a D skip, computed for all time steps at once.

    Args:
        d_model: number of neurons H.
        d_state: state size N per neuron.
        kernel: name of the kernel family (``diag``: S4D, ``dplr``: S4).
        bidirectional: two-sided kernel (a causal plus an anti-causal kernel per neuron).
        **kernel_kwargs: passed to the kernel (init, dt_min, dt_max, ssm_lr, dt_lr, and the
            kernel's own options such as ``shared`` for ``dplr``).

    Inputs: ``x`` (B, H, L). Outputs: ``u`` (B, H, L).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        kernel: str = "diag",
        bidirectional: bool = False,
        **kernel_kwargs,
    ) -> None:
        super().__init__()
        self.bidirectional = bidirectional
        try:
            self.kernel = kernel_class(kernel)(
                d_model, d_state, channels=2 if bidirectional else 1, **kernel_kwargs
            )
        except TypeError as error:  # an option of another kernel family (kernel_args)
            raise ValueError(f"bad options for SSM kernel {kernel!r}: {error}") from None
        self.d = nn.Parameter(torch.randn(d_model))

    def conv_kernel(self, length: int) -> torch.Tensor:
        """The kernel as :func:`fft_conv` takes it: (H, L) causal or (H, 2L) circular."""
        k = self.kernel(length)  # (C H L)
        if self.bidirectional:
            return two_sided_kernel(k[0], k[1], 2 * length)  # (H 2L)
        return k[0]  # (H L)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        y = fft_conv(x, self.conv_kernel(length))  # (B H L)
        return y + self.d.unsqueeze(-1) * x

    def initial_state(self, batch: int) -> tuple[object, torch.Tensor]:
        """Step mode: the recurrent form (discretised once, now) and the zero state.

        Two-sided kernels look at future inputs and have no step form: they raise.
        """
        if self.bidirectional:
            raise ValueError(
                "step mode needs causal SSM kernels, but this model has two-sided kernels "
                "(bidirectional=True); train it with bidirectional: false to stream it"
            )
        recurrence = recurrence_of(self.kernel)
        return recurrence, recurrence.initial_state(batch)

    def step(
        self, x: torch.Tensor, state: tuple[object, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[object, torch.Tensor]]:
        """One time step: ``x`` (B, H, 1) → ``u`` (B, H, 1), as :meth:`forward` at that step."""
        recurrence, hidden = state
        y, hidden = recurrence.step(x[..., 0], hidden)  # (B H)
        return (y + self.d * x[..., 0]).unsqueeze(-1), (recurrence, hidden)
