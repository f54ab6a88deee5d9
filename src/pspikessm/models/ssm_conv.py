"""SSM neurons applied to a whole sequence: ``u = K̄ * x + D x`` by FFT convolution."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.diagonal_kernel import DiagonalSSMKernel
from pspikessm.models.dplr_kernel import DPLRSSMKernel
from pspikessm.models.fft_conv import (
    fast_fft_size,
    fft_conv,
    fft_conv_reference,
    spectral_conv,
    two_sided_kernel,
)
from pspikessm.models.recurrence import recurrence_of

KERNELS: dict[str, type[nn.Module]] = {"diag": DiagonalSSMKernel, "dplr": DPLRSSMKernel}

#: Spectra kept per module in evaluation (one per distinct sequence length).
SPECTRUM_CACHE_SIZE = 8


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

    Fast path (:meth:`forward`; :meth:`forward_reference` is the plain one): the FFT has a
    fast size ``>= 2L`` (:func:`fast_fft_size`), the skip ``D x`` is folded into the kernel
    as its lag-0 tap (no extra pass over the batch, no copy of ``x`` kept for ``D``'s
    gradient), the convolution has a hand-written backward (:func:`fft_conv`), and in
    evaluation without gradients the kernel's spectrum is computed once and cached until a
    parameter changes or :meth:`train` is called (changes made through ``param.data`` in
    evaluation are not seen).
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
        self._spectra: dict[tuple, torch.Tensor] = {}
        self._spectra_state: tuple = ()

    def conv_kernel(self, length: int, fft_size: int | None = None) -> torch.Tensor:
        """The kernel as :func:`fft_conv` takes it: (H, L) causal or (H, fft_size) circular.

        ``fft_size`` (default 2L) matters only for the two-sided layout.
        """
        k = self.kernel(length)  # (C H L)
        if self.bidirectional:
            return two_sided_kernel(k[0], k[1], fft_size or 2 * length)  # (H n)
        return k[0]  # (H L)

    def skip_kernel(self, length: int, fft_size: int) -> torch.Tensor:
        """:meth:`conv_kernel` with ``D`` added to its lag-0 tap: (H, L) or (H, fft_size).

        Always float32 or wider, also under autocast: ``Ā^l`` over thousands of steps needs it.
        """
        with torch.autocast(self.d.device.type, enabled=False):
            k = self.kernel(length)  # (C H L)
            pieces = [k[0, :, :1] + self.d.unsqueeze(-1), k[0, :, 1:]]  # lags 0 .. L-1
            if self.bidirectional:  # the layout of two_sided_kernel, written in one pass
                gap = k.new_zeros(k.shape[1], fft_size - 2 * length)  # (H n-2L)
                pieces += [gap, k[1].flip(-1)]  # lags -(n-L) .. -1
            return torch.cat(pieces, dim=-1)  # (H L) or (H n)

    def kernel_spectrum(self, length: int, fft_size: int) -> torch.Tensor:
        """``rfft`` of :meth:`skip_kernel`: (H, fft_size/2+1) complex.

        Cached in evaluation when gradients are off (see the class docstring).
        """
        cacheable = not self.training and not torch.is_grad_enabled()
        key = (length, fft_size)
        if cacheable:
            state = self._parameter_state()
            if state != self._spectra_state:
                self._spectra, self._spectra_state = {}, state
            if key in self._spectra:
                return self._spectra[key]
        spectrum = torch.fft.rfft(self.skip_kernel(length, fft_size), n=fft_size)  # (H n/2+1)
        if cacheable:
            if len(self._spectra) >= SPECTRUM_CACHE_SIZE:
                self._spectra.pop(next(iter(self._spectra)))
            self._spectra[key] = spectrum
        return spectrum

    def _parameter_state(self) -> tuple:
        """Identity and in-place version of every tensor the spectrum depends on."""
        tensors = [*self.parameters(), *self.buffers()]
        return tuple((t.device, t.dtype, t.data_ptr(), t._version) for t in tensors)

    def train(self, mode: bool = True) -> SSMConvolution:
        self._spectra, self._spectra_state = {}, ()
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-1]
        fft_size = fast_fft_size(2 * length)
        if not self.training and not torch.is_grad_enabled():
            return spectral_conv(x, self.kernel_spectrum(length, fft_size), fft_size)
        return fft_conv(x, self.skip_kernel(length, fft_size), fft_size)  # (B H L)

    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` the plain way: FFT of size 2L, then the skip added separately."""
        y = fft_conv_reference(x, self.conv_kernel(x.shape[-1]))  # (B H L)
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
