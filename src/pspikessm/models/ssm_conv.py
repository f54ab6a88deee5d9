"""SSM neurons applied to a whole sequence: ``u = K̄ * x + D x`` by FFT convolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pspikessm.models.fft_conv import (
    fast_fft_size,
    fft_conv,
    fft_conv_reference,
    spectral_conv,
    two_sided_kernel,
)
from pspikessm.models.registry import resolve_class
from pspikessm.models.settings import BlockSettings

#: Built-in SSM kernels by name; ``block.kernel`` may also be any class's import path.
KERNELS = {
    "diag": "pspikessm.models.diagonal_kernel.DiagonalSSMKernel",
    "dplr": "pspikessm.models.dplr_kernel.DPLRSSMKernel",
}

#: Spectra kept per module in evaluation (one per distinct sequence length).
SPECTRUM_CACHE_SIZE = 8


def build_kernel(d_model: int, channels: int, settings: BlockSettings) -> nn.Module:
    """The kernel ``settings.kernel`` built as ``cls(d_model, channels, settings, **kernel_args)``.

    A kernel is an ``nn.Module`` whose ``forward(length)`` returns the (channels, H, length)
    convolution kernels; ``recurrence()`` (optional) gives its step-by-step form.
    """
    cls = resolve_class(settings.kernel, KERNELS, "block.kernel")
    try:
        return cls(d_model, channels, settings, **settings.kernel_args)
    except TypeError as error:  # an option of another kernel family
        raise ValueError(
            f"block.kernel_args={settings.kernel_args} do not fit kernel {settings.kernel!r} "
            f"({cls.__module__}.{cls.__qualname__}): {error}"
        ) from None


class SSMConvolution(nn.Module):
    """H SSM neurons with a D skip, computed for all time steps at once.

    Args:
        d_model: number of neurons H.
        settings: the block's settings; read: ``kernel`` and ``kernel_args`` (the kernel,
            :func:`build_kernel`), ``two_sided`` (a causal plus an anti-causal kernel per
            neuron), and what the kernel reads.

    Inputs: ``x`` (B, H, L). Outputs: ``u`` (B, H, L).

    Fast path (:meth:`forward`; :meth:`forward_reference` is the plain one): the FFT has a
    fast size ``>= 2L`` (:func:`fast_fft_size`), the skip ``D x`` is folded into the kernel
    as its lag-0 tap (no extra pass over the batch, no copy of ``x`` kept for ``D``'s
    gradient), the convolution has a hand-written backward (:func:`fft_conv`), and in
    evaluation without gradients the kernel's spectrum is computed once and cached until a
    parameter changes or :meth:`train` is called (changes made through ``param.data`` in
    evaluation are not seen).
    """

    def __init__(self, d_model: int, settings: BlockSettings | None = None) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        self.two_sided = settings.two_sided
        self.kernel = build_kernel(d_model, 2 if settings.two_sided else 1, settings)
        self.d = nn.Parameter(torch.randn(d_model))
        self._spectra: dict[tuple, torch.Tensor] = {}
        self._spectra_state: tuple = ()

    def conv_kernel(self, length: int, fft_size: int | None = None) -> torch.Tensor:
        """The kernel as :func:`fft_conv` takes it: (H, L) causal or (H, fft_size) circular.

        ``fft_size`` (default 2L) matters only for the two-sided layout.
        """
        k = self.kernel(length)  # (C H L)
        if self.two_sided:
            return two_sided_kernel(k[0], k[1], fft_size or 2 * length)  # (H n)
        return k[0]  # (H L)

    def skip_kernel(self, length: int, fft_size: int) -> torch.Tensor:
        """:meth:`conv_kernel` with ``D`` added to its lag-0 tap: (H, L) or (H, fft_size).

        Always float32 or wider, also under autocast: ``Ā^l`` over thousands of steps needs it.
        """
        with torch.autocast(self.d.device.type, enabled=False):
            k = self.kernel(length)  # (C H L)
            pieces = [k[0, :, :1] + self.d.unsqueeze(-1), k[0, :, 1:]]  # lags 0 .. L-1
            if self.two_sided:  # the layout of two_sided_kernel, written in one pass
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
        """Step mode: the kernel's recurrent form (discretised once, now) and the zero state.

        Two-sided kernels look at future inputs and have no step form: they raise.
        """
        if self.two_sided:
            raise ValueError(
                "step mode needs causal SSM kernels, but this model has two-sided kernels "
                "(block.two_sided=true); train it with two_sided: false to stream it"
            )
        if not hasattr(self.kernel, "recurrence"):
            raise ValueError(
                f"{type(self.kernel).__name__} has no recurrent (step) form: give it a "
                "recurrence() method to stream it"
            )
        recurrence = self.kernel.recurrence()
        return recurrence, recurrence.initial_state(batch)

    def step(
        self, x: torch.Tensor, state: tuple[object, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[object, torch.Tensor]]:
        """One time step: ``x`` (B, H, 1) → ``u`` (B, H, 1), as :meth:`forward` at that step."""
        recurrence, hidden = state
        y, hidden = recurrence.step(x[..., 0], hidden)  # (B H)
        return (y + self.d * x[..., 0]).unsqueeze(-1), (recurrence, hidden)


def joint_convolution(
    ssms: Sequence[nn.Module], xs: Sequence[torch.Tensor], join: bool | None = None
) -> list[torch.Tensor]:
    """``[ssm(x) for ssm, x in zip(ssms, xs)]`` (each x (B, H, L)) as one FFT convolution over
    the stacked channels (B, nH, L): a block's branches share one rfft, product and irfft
    (and one of each backward) instead of one per branch. Per channel the transforms are the
    same, so are the results. ``join`` None: on a GPU only, where a step waits for kernel
    launches; on CPU the stacking copies cost more than they save (a ListOps block's
    forward+backward took 1.21x as long joined, one thread). One call per module also where
    the stacking does not apply: another module than :class:`SSMConvolution`, or a hook
    watching one.
    """
    join = xs[0].is_cuda if join is None else join
    joinable = (
        join
        and len(ssms) > 1
        and all(
            type(ssm) is SSMConvolution and not (ssm._forward_hooks or ssm._forward_pre_hooks)
            for ssm in ssms
        )
    )
    if not joinable:
        return [ssm(x) for ssm, x in zip(ssms, xs, strict=True)]
    length = xs[0].shape[-1]
    fft_size = fast_fft_size(2 * length)
    x = torch.cat(list(xs), dim=1)  # (B nH L)
    if not ssms[0].training and not torch.is_grad_enabled():
        spectra = torch.cat([ssm.kernel_spectrum(length, fft_size) for ssm in ssms])
        y = spectral_conv(x, spectra, fft_size)
    else:
        kernels = torch.cat([ssm.skip_kernel(length, fft_size) for ssm in ssms])  # (nH K)
        y = fft_conv(x, kernels, fft_size)  # (B nH L)
    return list(y.split([x.shape[1] for x in xs], dim=1))
