"""Long convolutions by FFT, causal or two-sided.

:func:`fft_conv` is the fast path: a custom autograd function whose backward is two real
FFTs of the batch (the gradient's transform and the input gradient's inverse) plus one of
the kernel's size, where autograd through ``rfft``/``irfft`` would take a full complex FFT.
:func:`fft_conv_reference` is the plain composition, kept for tests and as the definition.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


@functools.lru_cache(maxsize=256)
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
    x_f = torch.fft.rfft(x.to(torch.promote_types(x.dtype, torch.float32)), n=fft_size)
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
    compute_dtype = torch.promote_types(torch.promote_types(x.dtype, kernel.dtype), torch.float32)
    y = FFTConvolution.apply(x.to(compute_dtype), kernel.to(compute_dtype), n)
    return y.to(x.dtype)


def fft_conv_reference(
    x: torch.Tensor, kernel: torch.Tensor, fft_size: int | None = None
) -> torch.Tensor:
    """:func:`fft_conv` as the plain composition of ``rfft``, product and ``irfft``."""
    n = 2 * x.shape[-1] if fft_size is None else fft_size
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    return spectral_conv(x, torch.fft.rfft(kernel.to(compute_dtype), n=n), n)
