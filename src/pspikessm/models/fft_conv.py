"""Long convolutions by FFT, causal or two-sided."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def two_sided_kernel(causal: torch.Tensor, anticausal: torch.Tensor, fft_size: int) -> torch.Tensor:
    """Lay a causal and an anti-causal kernel (..., L) into one circular kernel (..., fft_size).

    ``causal[j]`` weighs lag ``+j`` (index j); ``anticausal[j]`` weighs lag ``-(j+1)`` (index
    ``fft_size - 1 - j``), so lag 0 is counted once. ``fft_size >= 2L`` avoids wrap-around.
    """
    length = causal.shape[-1]
    return F.pad(causal, (0, fft_size - length)) + F.pad(anticausal.flip(-1), (fft_size - length, 0))


def fft_conv(x: torch.Tensor, kernel: torch.Tensor, fft_size: int | None = None) -> torch.Tensor:
    """Linear convolution of ``x`` (B, H, L) with per-channel ``kernel`` (H, K) via FFT.

    ``kernel`` is either causal (K = L) or already laid out circularly for ``fft_size``
    (:func:`two_sided_kernel`). Returns (B, H, L) in ``x``'s dtype; the FFT runs in float32 at
    least, since half precision FFTs lose the long-range tail of the kernel.
    """
    length = x.shape[-1]
    n = fft_size or 2 * length
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    x_f = torch.fft.rfft(x.to(compute_dtype), n=n)  # (B H n/2+1)
    k_f = torch.fft.rfft(kernel.to(compute_dtype), n=n)  # (H n/2+1)
    y = torch.fft.irfft(x_f * k_f, n=n)[..., :length]  # (B H L)
    return y.to(x.dtype)
