"""Diagonal SSM kernel (S4D family): one N-dimensional linear neuron per channel.

Each of the H neurons owns ``h[t] = Ā h[t-1] + B̄ x[t]``, ``u[t] = 2 Re(C h[t])`` with a
diagonal complex ``A`` of N/2 modes (one per conjugate pair, hence the factor 2), discretised
by zero-order hold with a learnable step ``dt``. The kernel is the impulse response
``K̄[l] = 2 Re(C Ā^l B̄)``, evaluated for all ``l`` at once.

Two evaluations give the same kernel: :meth:`DiagonalSSMKernel.kernel_reference` is the plain
Vandermonde product (an H × N/2 × L complex tensor, kept by autograd for backward);
:meth:`DiagonalSSMKernel.forward` splits every power ``Ā^l`` with ``l = j c + i`` into
``Ā^{jc} Ā^i`` (:func:`vandermonde_kernel`), so the kernel is one real matrix product of two
small factors and nothing of size H × N × L is ever formed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from pspikessm.models.kernels.hippo import legs_nplr
from pspikessm.models.kernels.parameters import (
    dt_of,
    init_inv_dt,
    stack_parameters,
    tag_kernel_parameters,
)
from pspikessm.models.settings import BlockSettings

INITS = ("legs", "lin")


def init_diagonal(init: str, state_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Initial ``A`` and ``B`` (N/2 complex modes each) for an S4D init.

    ``legs``: the eigenvalues of HiPPO-LegS's normal part, ``B`` in its eigenbasis (S4D-LegS).
    ``lin``: ``A_n = -1/2 + i π n``, ``B_n = 1`` (S4D-Lin).
    """
    if init == "legs":
        nplr = legs_nplr(state_size)
        return nplr.w, nplr.b
    if init == "lin":
        n = torch.arange(state_size // 2, dtype=torch.float64)
        a = -0.5 + 1j * math.pi * n
        return a.to(torch.complex128), torch.ones(state_size // 2, dtype=torch.complex128)
    raise ValueError(f"unknown SSM init {init!r}; expected one of {INITS}")


def power_split(length: int) -> tuple[int, int]:
    """``(chunk, blocks)`` with ``chunk * blocks >= length``, both about ``sqrt(length)``.

    ``chunk`` is a multiple of 16 (matrix-product friendly) unless ``length`` is smaller.
    """
    chunk = min(length, 16 * math.ceil(math.sqrt(length) / 16))
    return chunk, math.ceil(length / chunk)


def complex_exp(z: torch.Tensor) -> torch.Tensor:
    """``exp(z)`` for complex ``z`` from real ``exp``, ``cos`` and ``sin``.

    Same values as ``torch.exp`` (to rounding), several times faster on CPU, where the
    complex ``exp`` is not vectorised.
    """
    real, imag = torch.view_as_real(z).unbind(-1)  # backward: one stack, not two zero tensors
    return torch.polar(torch.exp(real), imag)


def vandermonde_kernel(weights: torch.Tensor, dt_a: torch.Tensor, length: int) -> torch.Tensor:
    """``K[c, h, l] = 2 Re(Σ_n weights[c, h, n] exp(dt_a[h, n] l))`` for ``l < length``.

    Args:
        weights: (C, H, N/2) complex, ``C B̄``.
        dt_a: (H, N/2) complex, ``dt A`` (so ``exp(dt_a) = Ā``).

    Returns (C, H, L) real. With ``l = j c + i`` (``c`` from :func:`power_split`),
    ``K[c, h, jc + i] = 2 Re(Σ_n (weights Ā^{jc})[c, h, j, n] Ā^i[h, n, i])``: per neuron a real
    matrix product of a (C L/c, N) and an (N, c) factor (real and imaginary parts stacked),
    which autograd differentiates while keeping only those factors. Every power is one
    ``exp`` of ``dt_a`` times an exact integer, as in the plain Vandermonde product.
    """
    chunk, blocks = power_split(length)
    real = dt_a.real.dtype
    inner_steps = torch.arange(chunk, device=dt_a.device, dtype=real)  # (c)
    outer_steps = torch.arange(blocks, device=dt_a.device, dtype=real) * chunk  # (J)
    inner = complex_exp(dt_a.unsqueeze(-1) * inner_steps)  # (H N/2 c)
    outer = complex_exp(dt_a.unsqueeze(-2) * outer_steps.unsqueeze(-1))  # (H J N/2)
    left = (2.0 * weights).transpose(0, 1).unsqueeze(-2) * outer.unsqueeze(1)  # (H C J N/2)
    # [Re, -Im] and [Re; Im] from one view each (a view's backward is one copy at most,
    # a real and an imaginary part's are a zero tensor each and their sum)
    left = torch.view_as_real(left.conj_physical()).transpose(-1, -2).flatten(-2)  # (H C J N)
    left = left.flatten(1, 2)  # (H CJ N)
    right = torch.view_as_real(inner).permute(0, 3, 1, 2).flatten(1, 2)  # (H N c)
    # One bmm over H (no broadcast over C, whose backward would be a reduction).
    kernel = torch.bmm(left, right)  # (H CJ c): Re(left) Re(right) - Im(left) Im(right)
    kernel = kernel.view(dt_a.shape[0], weights.shape[0], -1)[..., :length]  # (H C L)
    return kernel.transpose(0, 1).contiguous()  # (C H L), laid out as the interface promises


class DiagonalSSMKernel(nn.Module):
    """Computes the convolution kernels of H diagonal SSM neurons (S4D).

    Args:
        d_model: number of neurons H.
        channels: kernels per neuron (2 for a two-sided kernel: causal and anti-causal).
        settings: the block's settings; read: ``d_state`` (N/2 complex conjugate-pair modes),
            ``init`` (``legs`` or ``lin``), ``dt_min``/``dt_max``, and the learning rates
            (:func:`~pspikessm.models.kernels.parameters.tag_kernel_parameters`).
        dt_transform: ``dt = exp(inv_dt)`` (S4D's) or ``softplus(inv_dt)``.

    Parameters: ``inv_dt`` (H,), ``log_a_real``/``a_imag`` (H, N/2), ``b`` (H, N/2, 2) and
    ``c`` (C, H, N/2, 2) (complex numbers as real pairs).
    """

    def __init__(
        self,
        d_model: int,
        channels: int = 1,
        settings: BlockSettings | None = None,
        dt_transform: str = "exp",
    ) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        if settings.d_state % 2:
            raise ValueError(f"d_state must be even (conjugate pairs), got {settings.d_state}")
        a, b = init_diagonal(settings.init, settings.d_state)
        modes = settings.d_state // 2
        self.dt_transform = dt_transform
        self.inv_dt = nn.Parameter(init_inv_dt(d_model, settings, dt_transform))
        # A = -exp(log_a_real) + i a_imag keeps Re(A) < 0: every neuron stays stable.
        self.log_a_real = nn.Parameter(torch.log(-a.real).float().repeat(d_model, 1))  # (H N/2)
        self.a_imag = nn.Parameter(a.imag.float().repeat(d_model, 1))  # (H N/2)
        self.b = nn.Parameter(torch.view_as_real(b.to(torch.complex64)).repeat(d_model, 1, 1))
        c = torch.randn(channels, d_model, modes, dtype=torch.complex64)  # (C H N/2)
        self.c = nn.Parameter(torch.view_as_real(c))
        tag_kernel_parameters(settings, [self.log_a_real, self.a_imag, self.b], self.inv_dt, self.c)

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ZOH discretisation: ``(dt A, Ā, B̄)``, each (H, N/2) complex."""
        return joint_discretize([self])

    @property
    def c_complex(self) -> torch.Tensor:
        return torch.view_as_complex(self.c)  # (C H N/2)

    def stack_key(self) -> tuple:
        """What kernels computed together by :meth:`stacked` must share."""
        return (self.dt_transform, tuple(self.c.shape), self.c.dtype)

    def forward(self, length: int) -> torch.Tensor:
        """Returns the kernels ``K̄`` of shape (C, H, L) for ``L = length``."""
        return self.stacked([self], length)[0]

    @staticmethod
    def stacked(kernels: Sequence[DiagonalSSMKernel], length: int) -> torch.Tensor:
        """The kernels (G, C, H, L) of G kernels of one :meth:`stack_key`, computed at once:
        their G·H neurons are one set of neurons to :func:`vandermonde_kernel`."""
        dt_a, _, b_bar = joint_discretize(kernels)  # (GH N/2)
        c = stack_parameters([k.c for k in kernels])  # (G C H N/2 2)
        c = torch.view_as_complex(c.transpose(0, 1).flatten(1, 2))  # (C GH N/2)
        kernel = vandermonde_kernel(c * b_bar, dt_a, length)  # (C GH L)
        return kernel.unflatten(1, (len(kernels), -1)).transpose(0, 1)  # (G C H L)

    def kernel_reference(self, length: int) -> torch.Tensor:
        """:meth:`forward` as a plain Vandermonde product (the reference for tests)."""
        dt_a, _, b_bar = self.discretize()
        steps = torch.arange(length, device=dt_a.device, dtype=dt_a.real.dtype)  # (L)
        vandermonde = torch.exp(dt_a.unsqueeze(-1) * steps)  # (H N/2 L)
        weights = self.c_complex * b_bar  # (C H N/2)
        kernel = torch.einsum("chn,hnl->chl", weights, vandermonde)  # (C H L)
        return 2.0 * kernel.real

    def recurrence(self) -> DiagonalRecurrence:
        """The step-by-step form of the causal kernel (discretised once, now)."""
        return DiagonalRecurrence(self)


def joint_discretize(
    kernels: Sequence[DiagonalSSMKernel],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ZOH discretisation of G kernels' neurons in order: ``(dt A, Ā, B̄)``, each (G·H, N/2)."""

    def joint(name: str) -> torch.Tensor:  # (G H ...) → (GH ...)
        return stack_parameters([getattr(k, name) for k in kernels]).flatten(0, 1)

    dt = dt_of(joint("inv_dt"), kernels[0].dt_transform)  # (GH)
    a = torch.complex(-torch.exp(joint("log_a_real")), joint("a_imag"))  # (GH N/2)
    dt_a = dt.unsqueeze(-1) * a  # (GH N/2)
    a_bar = torch.exp(dt_a)
    return dt_a, a_bar, (a_bar - 1.0) / a * torch.view_as_complex(joint("b"))


class DiagonalRecurrence:
    """``h[t] = Ā h[t-1] + B̄ x[t]``, ``u[t] = 2 Re(C h[t])`` with ``h`` (B, H, N/2) complex:
    the system whose impulse response is :class:`DiagonalSSMKernel`'s causal kernel."""

    def __init__(self, kernel: DiagonalSSMKernel) -> None:
        _, self.a_bar, self.b_bar = kernel.discretize()  # (H N/2) each
        self.c = kernel.c_complex[0]  # (H N/2) the causal channel

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.a_bar.new_zeros((batch, *self.a_bar.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, H) real → ``u`` (B, H) real and the next state."""
        state = self.a_bar * state + self.b_bar * x.unsqueeze(-1)  # (B H N/2)
        return 2.0 * (state * self.c).sum(-1).real.to(x.dtype), state
