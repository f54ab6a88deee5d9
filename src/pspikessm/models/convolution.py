"""SSM neurons applied to a whole sequence: ``u = K̄ * x + D x`` by FFT convolution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.kernels import KERNEL_INTERFACE, build_kernel
from pspikessm.models.settings import BlockSettings

#: Spectra kept per module in evaluation (one per distinct sequence length).
SPECTRUM_CACHE_SIZE = 8


class SSMConvolution(nn.Module):
    """H SSM neurons with a D skip, computed for all time steps at once.

    Args:
        d_model: number of neurons H.
        settings: the block's settings; read: ``kernel`` (the kernel and its options,
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

    def kernels(self, length: int) -> torch.Tensor:
        """The kernel module's (C, H, L) kernels (C = 2 two-sided), checked against that shape
        here, where they are used: a kernel of another interface fails naming the option."""
        k = self.kernel(length)
        expected = (2 if self.two_sided else 1, self.d.numel(), length)
        if tuple(k.shape) != expected:
            kind = type(self.kernel)
            raise ValueError(
                f"block.kernel ({kind.__module__}.{kind.__qualname__}): forward({length}) gave "
                f"shape {tuple(k.shape)}, not {expected}. Expected: {KERNEL_INTERFACE}"
            )
        return k

    def conv_kernel(self, length: int, fft_size: int | None = None) -> torch.Tensor:
        """The kernel as :func:`fft_conv` takes it: (H, L) causal or (H, fft_size) circular.

        ``fft_size`` (default 2L) matters only for the two-sided layout.
        """
        k = self.kernels(length)  # (C H L)
        if self.two_sided:
            return two_sided_kernel(k[0], k[1], fft_size or 2 * length)  # (H n)
        return k[0]  # (H L)

    def skip_kernel(self, length: int, fft_size: int) -> torch.Tensor:
        """:meth:`conv_kernel` with ``D`` added to its lag-0 tap: (H, L) or (H, fft_size).

        Always float32 or wider, also under autocast: ``Ā^l`` over thousands of steps needs it.
        """
        with torch.autocast(self.d.device.type, enabled=False):
            k = self.kernels(length)  # (C H L)
            return with_skips(k.unsqueeze(0), self.d.unsqueeze(0), fft_size)[0]  # (H K)

    def kernel_spectrum(self, length: int, fft_size: int) -> torch.Tensor:
        """``rfft`` of :meth:`skip_kernel`: (H, fft_size/2+1) complex.

        Cached in evaluation when gradients are off (see the class docstring).
        """
        cacheable = uses_cached_spectra(self)
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
        return stacked_convolution([self], x)  # (B H L)

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


class JointSSMConvolution(nn.Module):
    """The SSM neurons of every branch of a block as one convolution: per branch ``x_j``
    (B, H, L) → ``u_j`` (B, H, L), what branch j's :class:`SSMConvolution` computes.

    On a GPU, where a step waits for kernel launches, the branches run as one FFT convolution
    over their stacked channels (B, bH, L): one rfft, product and irfft (and one of each
    backward) instead of one per branch. On CPU each branch runs alone: the stacking copies
    cost more than they save (a ListOps block's forward+backward took 1.21x as long joined,
    one thread). Per channel the transforms are the same, so are the results.

    It holds no parameters: the branches own (and save) their SSMs. Its forward hooks see
    every branch's ``u``; the branches' own SSM modules are not called.
    """

    def __init__(self, branch_ssms: Sequence[SSMConvolution]) -> None:
        super().__init__()
        self.branch_ssms = tuple(branch_ssms)  # a tuple: not registered a second time

    def forward(
        self, xs: Sequence[torch.Tensor], kernel: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Per branch ``x_j`` (B, H, L) → ``u_j`` (B, H, L); ``kernel`` (ΣH, K): the branches'
        kernels with their skips (:class:`~pspikessm.models.kernel_bank.KernelBank`), or None:
        each branch's SSM computes its own."""
        if len(xs) == 1:  # no split, no cat: each would be an op (and its backward another)
            return [stacked_convolution(self.branch_ssms, xs[0], kernel)]
        if not joins_branches(xs[0]):
            kernels = [None] * len(xs) if kernel is None else kernel.split(xs[0].shape[1])
            return [
                stacked_convolution([ssm], x, k)
                for ssm, x, k in zip(self.branch_ssms, xs, kernels, strict=True)
            ]
        y = stacked_convolution(self.branch_ssms, torch.cat(list(xs), dim=1), kernel)  # (B bH L)
        return list(y.split([x.shape[1] for x in xs], dim=1))


def joins_branches(x: torch.Tensor) -> bool:
    """Whether a block's branches convolve as one (:class:`JointSSMConvolution`): on a GPU,
    where a step waits for launches; not on CPU, where the stacking copies cost more."""
    return x.is_cuda


def uses_cached_spectra(ssm: SSMConvolution) -> bool:
    """Whether ``ssm`` convolves with its cached spectrum: in evaluation without gradients."""
    return not ssm.training and not torch.is_grad_enabled()


def stacked_convolution(
    ssms: Sequence[SSMConvolution], x: torch.Tensor, kernel: torch.Tensor | None = None
) -> torch.Tensor:
    """``x`` (B, ΣH, L), the channels of ``ssms`` stacked, convolved with their kernels and D
    skips: :func:`fft_conv` of their :meth:`~SSMConvolution.skip_kernel` (or of ``kernel``
    (ΣH, K), those kernels computed already), or in evaluation without gradients
    :func:`spectral_conv` of their cached spectra. → (B, ΣH, L)."""
    length = x.shape[-1]
    fft_size = fast_fft_size(2 * length)
    if kernel is not None:
        return fft_conv(x, kernel, fft_size)
    if uses_cached_spectra(ssms[0]):
        spectra = [ssm.kernel_spectrum(length, fft_size) for ssm in ssms]  # (H n/2+1) each
        return spectral_conv(x, torch.cat(spectra) if len(ssms) > 1 else spectra[0], fft_size)
    kernels = [ssm.skip_kernel(length, fft_size) for ssm in ssms]  # (H K) each
    return fft_conv(x, torch.cat(kernels) if len(ssms) > 1 else kernels[0], fft_size)


def with_skips(kernels: torch.Tensor, d: torch.Tensor, fft_size: int) -> torch.Tensor:
    """G SSMs' kernels (G, C, H, L) with their ``D`` (G, H) added to the lag-0 tap, laid out as
    :func:`fft_conv` takes them: (G, H, L) causal (C = 1) or (G, H, fft_size) circular (C = 2,
    the layout of :func:`two_sided_kernel`, written in one pass)."""
    # unbind, not indexing: its backward is one stack, an index's a zero tensor each
    causal, *anticausal = kernels.unbind(1)  # (G H L) each
    pieces = [causal[..., :1] + d.unsqueeze(-1), causal[..., 1:]]  # lags 0 .. L-1
    if anticausal:
        length = kernels.shape[-1]
        gap = kernels.new_zeros(*causal.shape[:-1], fft_size - 2 * length)  # (G H n-2L)
        pieces += [gap, anticausal[0].flip(-1)]  # lags -(n-L) .. -1
    return torch.cat(pieces, dim=-1)


# Long convolutions by FFT, causal or two-sided.
#
# :func:`fft_conv` is the fast path: a custom autograd function whose backward is two real
# FFTs of the batch (the gradient's transform and the input gradient's inverse) plus one of
# the kernel's size, where autograd through ``rfft``/``irfft`` would take a full complex FFT.
# :func:`fft_conv_reference` is the plain composition, kept for tests and as the definition.


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 when a tensor is float64, else float32: no FFT runs in half precision (it would
    lose the kernels' long-range tail). Decided in Python: ``torch.promote_types`` is an op."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def fast_fft_size(minimum: int) -> int:
    """The smallest ``2^a 3^b 5^c >= minimum``: a size every FFT library handles fast.

    For a power-of-two ``minimum`` this is ``minimum`` itself.
    """
    best = 1 << max(minimum - 1, 0).bit_length()  # the next power of two always qualifies
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            size = power35
            while size < minimum:
                size *= 2
            best = min(best, size)
            power35 *= 3
        power5 *= 5
    return best


def two_sided_kernel(causal: torch.Tensor, anticausal: torch.Tensor, fft_size: int) -> torch.Tensor:
    """Lay a causal and an anti-causal kernel (..., L) into one circular kernel (..., fft_size).

    ``causal[j]`` weighs lag ``+j`` (index j); ``anticausal[j]`` weighs lag ``-(j+1)`` (index
    ``fft_size - 1 - j``), so lag 0 is counted once. ``fft_size >= 2L`` avoids wrap-around.
    """
    length = causal.shape[-1]
    return F.pad(causal, (0, fft_size - length)) + F.pad(
        anticausal.flip(-1), (fft_size - length, 0)
    )


def spectral_conv(x: torch.Tensor, kernel_f: torch.Tensor, fft_size: int) -> torch.Tensor:
    """Convolve ``x`` (B, H, L) with a kernel given by its spectrum (H, fft_size/2+1).

    Differentiable by plain autograd; the model uses it without gradients (cached spectra in
    evaluation). Returns (B, H, L) in ``x``'s dtype, computed in float32 at least.
    """
    length = x.shape[-1]
    x_f = torch.fft.rfft(x.to(compute_dtype(x)), n=fft_size)
    return torch.fft.irfft(x_f * kernel_f, n=fft_size)[..., :length].to(x.dtype)  # (B H L)


class FFTConvolution(torch.autograd.Function):
    """``y = irfft(rfft(x, n) * rfft(k, n), n)[..., :L]`` with a hand-written backward.

    With ``g = ∂loss/∂y`` zero-padded to n: ``∂loss/∂x = irfft(G · conj(K))[:L]`` and
    ``∂loss/∂k = irfft(Σ_b G · conj(X))[:K]`` (circular correlations). Saves the spectra
    ``X`` (for the kernel's gradient) and ``K`` (for the input's), each only when needed.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor, fft_size: int) -> torch.Tensor:
        x_f = torch.fft.rfft(x, n=fft_size)  # (B H n/2+1)
        k_f = torch.fft.rfft(kernel, n=fft_size)  # (H n/2+1)
        y = torch.fft.irfft(x_f * k_f, n=fft_size)[..., : x.shape[-1]]  # (B H L)
        ctx.save_for_backward(
            x_f if ctx.needs_input_grad[1] else None, k_f if ctx.needs_input_grad[0] else None
        )
        ctx.fft_size, ctx.kernel_length = fft_size, kernel.shape[-1]
        return y.contiguous()  # frees the (B H n) buffer the slice would keep alive

    @staticmethod
    def backward(
        ctx, grad_y: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x_f, k_f = ctx.saved_tensors
        n, length = ctx.fft_size, grad_y.shape[-1]
        g_f = torch.fft.rfft(grad_y, n=n)  # (B H n/2+1)
        grad_x = grad_k = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.fft.irfft(g_f * k_f.conj(), n=n)[..., :length]  # (B H L)
        if ctx.needs_input_grad[1]:
            cross = (g_f * x_f.conj()).sum(0)  # (H n/2+1)
            grad_k = torch.fft.irfft(cross, n=n)[..., : ctx.kernel_length]  # (H K)
        return grad_x, grad_k, None


def _check_kernel(kernel: torch.Tensor, length: int, fft_size: int) -> None:
    if fft_size < 2 * length - 1 or kernel.shape[-1] > fft_size:
        raise ValueError(
            f"fft_size={fft_size} must be >= 2L-1 = {2 * length - 1} and >= the kernel's "
            f"length {kernel.shape[-1]} to avoid wrap-around"
        )


def fft_conv(x: torch.Tensor, kernel: torch.Tensor, fft_size: int | None = None) -> torch.Tensor:
    """Linear convolution of ``x`` (B, H, L) with per-channel ``kernel`` (H, K) via FFT.

    ``kernel`` is either causal (K = L) or already laid out circularly for ``fft_size``
    (:func:`two_sided_kernel`); ``fft_size`` defaults to 2L. Returns (B, H, L) in ``x``'s
    dtype; the FFT runs in float32 at least, since half precision FFTs lose the long-range
    tail of the kernel.
    """
    n = 2 * x.shape[-1] if fft_size is None else fft_size
    _check_kernel(kernel, x.shape[-1], n)
    dtype = compute_dtype(x, kernel)
    y = FFTConvolution.apply(x.to(dtype), kernel.to(dtype), n)
    return y.to(x.dtype)


def fft_conv_reference(
    x: torch.Tensor, kernel: torch.Tensor, fft_size: int | None = None
) -> torch.Tensor:
    """:func:`fft_conv` as the plain composition of ``rfft``, product and ``irfft``."""
    n = 2 * x.shape[-1] if fft_size is None else fft_size
    return spectral_conv(x, torch.fft.rfft(kernel.to(compute_dtype(x)), n=n), n)
