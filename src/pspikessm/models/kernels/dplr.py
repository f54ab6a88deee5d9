"""Diagonal-plus-low-rank SSM kernel (S4): HiPPO-LegS NPLR init, bilinear step, Cauchy kernel.

In the eigenbasis of HiPPO-LegS's normal part every SSM has ``A = diag(Λ) - p p*`` with
conjugate-pair eigenvalues, so only one half of each pair is stored (N/2 complex modes) and the
other half is implied: the full N-dimensional quantities are ``[x, conj(x)]``. The real-valued
membrane is ``u[t] = C_full h[t]``, ``h[t] = Ā h[t-1] + B̄ s[t]`` with the bilinear (Tustin)
discretisation ``Ā = (I - Δ/2 A)^-1 (I + Δ/2 A)``, ``B̄ = (I - Δ/2 A)^-1 Δ B``.

The length-L kernel is evaluated in the frequency domain at the roots of unity ω:

    K̂(ω) = C̃ (I - Ā ω)^-1 B̄ = Δ C̃ M(ω)^-1 B,   C̃ = C (I - Ā^L),
    M(ω) = diag((1 - ω) - (1 + ω) Δ/2 Λ) + (1 + ω) Δ/2 p p*,

so ``M^-1`` is a diagonal (Cauchy) term plus a rank-one Woodbury correction, and
``K̄ = irfft(K̂)``. Writing ``M`` this way instead of S4's ``2/(1+ω) (g(ω) - Λ)^-1`` avoids the
division by ``1 + ω = 0`` at the Nyquist frequency.

Two parameterisations of the output matrix, as the kernel's ``l_max`` says:

- ``l_max`` set (S4's, the official one): the parameter is ``C̃ = C (I - Ā^l_max)``, drawn at
  init from a standard normal ``C``; every kernel is evaluated at ``l_max`` and cut to the
  batch's length (which must not exceed ``l_max``). No matrix power per step.
- ``l_max`` None: the parameter is the true ``C`` and ``Ā^L`` is a dense matrix power per
  neuron at every call (log2(L) batched N×N products), at any length.

Both give the same model (the same true ``C``, the same kernel at every length ≤ l_max);
they differ in what the optimiser moves. :meth:`DPLRSSMKernel.dense` gives the true ``C``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from pspikessm.models.kernels.cauchy import cauchy_sums
from pspikessm.models.kernels.hippo import legs_nplr
from pspikessm.models.kernels.parameters import (
    dt_of,
    init_inv_dt,
    stack_parameters,
    tag_kernel_parameters,
)
from pspikessm.models.settings import BlockSettings

DPLR_INITS = ("legs",)


class DPLRSSMKernel(nn.Module):
    """Convolution kernels of H S4 (DPLR) neurons; same interface as ``DiagonalSSMKernel``.

    Args:
        d_model: number of neurons H.
        channels: kernels per neuron (2 for a two-sided kernel).
        settings: the block's settings; read: ``d_state`` (N/2 stored conjugate-pair modes),
            ``init`` (``legs``, the only NPLR init implemented), ``dt_min``/``dt_max``, and the
            learning rates (:func:`~pspikessm.models.kernels.parameters.tag_kernel_parameters`).
        shared: one (Λ, p, B) per layer (S4's ``n_ssm: 1``, the paper's LRA setting) or one
            per neuron (``False``: ``n_ssm: null``, the paper's Pathfinder setting). C, dt and
            D are per neuron.
        dt_transform: ``dt = softplus(inv_dt)`` (S4's default, the official configs') or
            ``exp(inv_dt)``.
        b_clip: clip the imaginary part of the initial B to [-b_clip, b_clip], as S4's
            ``hippo.nplr`` does (None: no clipping).
        l_max: the kernel length S4's ``C̃`` parameter is tuned to (the official configs set
            the data's longest sequence); None: the true ``C`` (see the module docstring).

    Parameters: ``inv_dt`` (H,), ``log_w_real``/``w_imag`` (S, N/2), ``p``, ``b`` (S, N/2, 2),
    ``c`` (C, H, N/2, 2) (``C̃`` or ``C``), with S = 1 (shared) or H (complex as real pairs).
    """

    def __init__(
        self,
        d_model: int,
        channels: int = 1,
        settings: BlockSettings | None = None,
        shared: bool = True,
        dt_transform: str = "softplus",
        b_clip: float | None = 2.0,
        l_max: int | None = None,
    ) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        if settings.init not in DPLR_INITS:
            raise ValueError(f"block.init={settings.init!r}: the DPLR kernel supports {DPLR_INITS}")
        nplr = legs_nplr(settings.d_state)  # raises on odd d_state
        b = nplr.b
        if b_clip is not None:
            b = torch.complex(b.real, b.imag.clamp(-b_clip, b_clip))
        copies = 1 if shared else d_model
        self.d_model = d_model
        self.shared = shared
        self.dt_transform = dt_transform
        self.l_max = l_max
        self.inv_dt = nn.Parameter(init_inv_dt(d_model, settings, dt_transform))
        # Re(Λ) = -exp(log_w_real) < 0 and A = Λ - p p* has a negative definite Hermitian
        # part, so every neuron stays stable whatever p becomes.
        self.log_w_real = nn.Parameter(torch.log(-nplr.w.real).float().repeat(copies, 1))
        self.w_imag = nn.Parameter(nplr.w.imag.float().repeat(copies, 1))  # (S N/2)
        self.p = nn.Parameter(torch.view_as_real(nplr.p.to(torch.complex64)).repeat(copies, 1, 1))
        self.b = nn.Parameter(torch.view_as_real(b.to(torch.complex64)).repeat(copies, 1, 1))
        modes = settings.d_state // 2
        c = torch.randn(channels, d_model, modes, dtype=torch.complex64)  # (C H N/2) true C
        self.c = nn.Parameter(torch.view_as_real(c))
        if l_max is not None:  # S4's _setup_C: store C̃ = C (I - Ā^l_max)
            with torch.no_grad():
                self.c.copy_(torch.view_as_real(self._output_times(c, l_max)))
        ssm = [self.log_w_real, self.w_imag, self.p, self.b]
        tag_kernel_parameters(settings, ssm, self.inv_dt, self.c)

    def dplr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Δ, Λ, p, B)``: Δ (H,) real; Λ, p, B (H, N/2) complex (shared ones broadcast)."""
        return joint_dplr([self])

    @property
    def c_complex(self) -> torch.Tensor:
        """The ``c`` parameter, complex (C, H, N/2): ``C̃`` when ``l_max`` is set, else ``C``."""
        return torch.view_as_complex(self.c)

    def state_space(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``Δ`` (H,), ``A`` (H, N, N), ``B`` (H, N): full vectors are ``[x, conj(x)]`` and
        ``A = diag(Λ_full) - p_full p_full*``."""
        return state_space(*self.dplr())

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Bilinear discretisation: ``Ā`` (H, N, N) and ``B̄`` (H, N), complex."""
        return discretize(*self.state_space())

    def _output_times(self, c: torch.Tensor, length: int) -> torch.Tensor:
        """``C (I - Ā^length)`` (C, H, N/2) for ``c`` = C (C, H, N/2), by a dense matrix power."""
        return output_times(self.discretize()[0], c, length)

    def dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The full state space: ``Δ`` (H,), ``A`` (H, N, N), ``B`` (H, N), true ``C`` (C, H, N)."""
        dt, a, b = self.state_space()
        c = self.c_complex
        c_full = torch.cat([c, c.conj()], dim=-1)  # (C H N)
        if self.l_max is not None:  # C = C̃ (I - Ā^l_max)^-1
            a_bar, _ = self.discretize()
            eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
            rest = eye - torch.linalg.matrix_power(a_bar, self.l_max)  # (H N N)
            c_full = torch.linalg.solve(rest, c_full.transpose(0, 1), left=False).transpose(0, 1)
        return dt, a, b, c_full

    def stack_key(self) -> tuple:
        """What kernels computed together by :meth:`stacked` must share."""
        return (self.d_model, self.dt_transform, self.l_max, tuple(self.c.shape), self.c.dtype)

    def forward(self, length: int) -> torch.Tensor:
        """Returns the kernels ``K̄`` of shape (C, H, L) for ``L = length``."""
        return self.stacked([self], length)[0]

    @staticmethod
    def stacked(kernels: Sequence[DPLRSSMKernel], length: int) -> torch.Tensor:
        """The kernels (G, C, H, L) of G kernels of one :meth:`stack_key`, computed at once.

        The G·H neurons are one set of neurons to the computation: the parameters are stacked
        (a shared Λ, p, B broadcast to their layer's neurons) and every op below runs once,
        whatever G is. Per neuron the arithmetic is that of one kernel alone.
        """
        first = kernels[0]
        if first.l_max is not None and length > first.l_max:
            raise ValueError(
                f"a sequence of length {length} is longer than the DPLR kernel's l_max="
                f"{first.l_max}: set model.backbone.init_args.block.kernel.init_args.l_max to "
                "the data's longest sequence"
            )
        dt, w, p, b = joint_dplr(kernels)  # (GH), (GH N/2) each
        c = stack_parameters([k.c_complex for k in kernels])  # (G C H N/2)
        c = c.transpose(0, 1).flatten(1, 2)  # (C GH N/2)
        if first.l_max is None:
            size, c_tilde = (
                length,
                output_times(discretize(*state_space(dt, w, p, b))[0], c, length),
            )
        else:
            size, c_tilde = first.l_max, c
        numerator, half_plus = frequency_terms(size, w.device, w.dtype)  # (K) each
        scale = half_plus * dt.unsqueeze(-1)  # (GH K)
        channels = c_tilde.shape[0]
        # The numerators (c_i b, c_i p) for every channel i and (p̄ b, p̄ p), as one product.
        left = torch.cat([c_tilde, p.conj().unsqueeze(0)])  # (C+1 GH N/2)
        numerators = left.unsqueeze(1) * torch.stack([b, p]).unsqueeze(0)  # (C+1 2 GH N/2)
        sums = cauchy_sums(numerators.flatten(0, 1), numerator, scale, w)  # (2C+2 GH K)
        # split and unbind, not slices: autograd joins their gradients in one cat or stack,
        # while every slice's backward writes a zero tensor of the whole size
        top, bottom = sums.unflatten(0, (channels + 1, 2)).split([channels, 1])
        (k00, k01), (k10, k11) = top.unbind(1), bottom.unbind(1)  # (C GH K), (1 GH K)
        k_hat = dt.unsqueeze(-1) * (k00 - scale * k01 * k10 / (1 + scale * k11))  # (C GH K)
        kernel = torch.fft.irfft(k_hat, n=size)[..., :length]  # (C GH L)
        return kernel.unflatten(1, (len(kernels), first.d_model)).transpose(0, 1)  # (G C H L)

    def recurrence(self) -> DenseRecurrence:
        """The step-by-step form of the causal kernel (discretised once, now)."""
        return DenseRecurrence(self)


#: ``frequency_terms`` by (size, device, dtype): constants, made once (eager mode only).
_FREQUENCY_TERMS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def frequency_terms(
    size: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``1 - ω`` and ``(1 + ω) / 2`` (K,) at the ``K = size//2 + 1`` roots of unity ``ω`` of
    the kernel's FFT. They depend on the size only: in eager mode they are made once per size,
    device and dtype (seven ops fewer per step), under ``torch.compile`` computed in the
    graph."""
    key = (size, torch.device(device), dtype)
    if key in _FREQUENCY_TERMS and not torch.compiler.is_compiling():
        return _FREQUENCY_TERMS[key]
    with torch.inference_mode(False), torch.no_grad():  # usable by autograd whatever the mode
        k = torch.arange(size // 2 + 1, device=device, dtype=torch.float64)
        omega = torch.exp(-2j * math.pi * k / size).to(dtype)  # (K) roots of unity
        terms = (1 - omega, (1 + omega) / 2)
    if not torch.compiler.is_compiling():
        if len(_FREQUENCY_TERMS) >= 32:
            _FREQUENCY_TERMS.clear()
        _FREQUENCY_TERMS[key] = terms
    return terms


def _over_neurons(x: torch.Tensor, d_model: int) -> torch.Tensor:
    """(G, S, ...) with S = 1 (shared by a kernel's neurons) or H → (G·H, ...)."""
    return x.expand(x.shape[0], d_model, *x.shape[2:]).flatten(0, 1)


def joint_dplr(
    kernels: Sequence[DPLRSSMKernel],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Δ, Λ, p, B)`` of G kernels' neurons in order: Δ (G·H,), Λ, p, B (G·H, N/2)."""
    first, d_model = kernels[0], kernels[0].d_model
    dt = dt_of(stack_parameters([k.inv_dt for k in kernels]), first.dt_transform).flatten()  # (GH)
    w = torch.complex(
        -torch.exp(stack_parameters([k.log_w_real for k in kernels])),
        stack_parameters([k.w_imag for k in kernels]),
    )  # (G S N/2)
    p = stack_parameters([torch.view_as_complex(k.p) for k in kernels])  # (G S N/2)
    b = stack_parameters([torch.view_as_complex(k.b) for k in kernels])
    return dt, *(_over_neurons(x, d_model) for x in (w, p, b))


def state_space(
    dt: torch.Tensor, w: torch.Tensor, p: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``Δ`` (H,), ``A`` (H, N, N), ``B`` (H, N) of ``(Δ, Λ, p, B)`` (H,), (H, N/2): full
    vectors are ``[x, conj(x)]`` and ``A = diag(Λ_full) - p_full p_full*``."""
    w_full = torch.cat([w, w.conj()], dim=-1)  # (H N)
    p_full = torch.cat([p, p.conj()], dim=-1)  # (H N)
    a = torch.diag_embed(w_full) - p_full.unsqueeze(-1) * p_full.conj().unsqueeze(-2)
    return dt, a, torch.cat([b, b.conj()], dim=-1)


def discretize(
    dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear discretisation of :func:`state_space`: ``Ā`` (H, N, N), ``B̄`` (H, N)."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    half_step = (dt / 2).view(-1, 1, 1)
    backward = eye - half_step * a  # (H N N)
    a_bar = torch.linalg.solve(backward, eye + half_step * a)
    b_bar = torch.linalg.solve(backward, dt.unsqueeze(-1) * b)
    return a_bar, b_bar


def output_times(a_bar: torch.Tensor, c: torch.Tensor, length: int) -> torch.Tensor:
    """``C (I - Ā^length)`` (C, H, N/2) for ``c`` = C (C, H, N/2) and ``Ā`` (H, N, N)."""
    c_full = torch.cat([c, c.conj()], dim=-1)  # (C H N)
    power = torch.linalg.matrix_power(a_bar, length)  # (H N N)
    c_tilde = c_full - torch.einsum("chn,hnm->chm", c_full, power)  # (C H N)
    return c_tilde[..., : c.shape[-1]]  # the other half is its conjugate


class DenseRecurrence:
    """``h[t] = Ā h[t-1] + B̄ x[t]``, ``u[t] = Re(C h[t])`` with ``h`` (B, H, N) complex and the
    dense bilinear ``Ā`` (H, N, N): the system of :class:`DPLRSSMKernel`'s causal kernel."""

    def __init__(self, kernel: DPLRSSMKernel) -> None:
        self.a_bar, self.b_bar = kernel.discretize()
        self.c = kernel.dense()[3][0]  # (H N) the causal channel's true C

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.b_bar.new_zeros((batch, *self.b_bar.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, H) real → ``u`` (B, H) real and the next state."""
        state = torch.einsum("hnm,bhm->bhn", self.a_bar, state) + self.b_bar * x.unsqueeze(-1)
        return (state * self.c).sum(-1).real.to(x.dtype), state
