"""Long convolutions by FFT, causal or two-sided."""

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
    return F.pad(causal, (0, fft_size - length)) + F.pad(anticausal.flip(-1), (fft_size - length, 0))


def spectral_conv(x: torch.Tensor, kernel_f: torch.Tensor, fft_size: int) -> torch.Tensor:
    """:func:`fft_conv` with the kernel already transformed: ``kernel_f`` (H, fft_size/2+1).

    Returns (B, H, L) in ``x``'s dtype; the FFT runs in float32 at least, since half
    precision FFTs lose the long-range tail of the kernel.
    """
    length = x.shape[-1]
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    x_f = torch.fft.rfft(x.to(compute_dtype), n=fft_size)  # (B H n/2+1)
    y = torch.fft.irfft(x_f * kernel_f, n=fft_size)[..., :length]  # (B H L)
    return y.to(x.dtype)


def fft_conv(x: torch.Tensor, kernel: torch.Tensor, fft_size: int | None = None) -> torch.Tensor:
    """Linear convolution of ``x`` (B, H, L) with per-channel ``kernel`` (H, K) via FFT.

    ``kernel`` is either causal (K = L) or already laid out circularly for ``fft_size``
    (:func:`two_sided_kernel`); ``fft_size`` defaults to 2L. Returns (B, H, L) in ``x``'s
    dtype; the FFT runs in float32 at least.
    """
    n = fft_size or 2 * x.shape[-1]
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    kernel_f = torch.fft.rfft(kernel.to(compute_dtype), n=n)  # (H n/2+1)
    return spectral_conv(x, kernel_f, n)
