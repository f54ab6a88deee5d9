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
division by ``1 + ω = 0`` at the Nyquist frequency. ``C`` is the true output matrix (not S4's
``C̃`` parameter), so the same parameters give the same model at every sequence length and in
step mode; ``Ā^L`` is a dense matrix power per neuron (log2(L) batched N×N products).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pspikessm.models.hippo import legs_nplr
from pspikessm.models.settings import BlockSettings
from pspikessm.models.ssm_parameters import dt_of, init_inv_dt, tag_kernel_parameters

DPLR_INITS = ("legs",)


def cauchy_conj(v: torch.Tensor, numerator: torch.Tensor, scale: torch.Tensor, w: torch.Tensor):
    """``Σ_n v_n / (a - β w_n) + conj(v_n) / (a - β conj(w_n))`` over the N/2 stored modes.

    The second term is the implied conjugate half of the state (conjugate-pair halving).
    Shapes: ``v`` (..., H, N/2); ``numerator`` a (K,); ``scale`` β (H, K); ``w`` (H, N/2).
    Returns (..., H, K).
    """
    a = numerator.view(1, -1, 1)  # (1 K 1)
    beta = scale.unsqueeze(-1)  # (H K 1)
    first = 1.0 / (a - beta * w.unsqueeze(1))  # (H K N/2)
    second = 1.0 / (a - beta * w.conj().unsqueeze(1))  # (H K N/2)
    return torch.einsum("...hn,hkn->...hk", v, first) + torch.einsum(
        "...hn,hkn->...hk", v.conj(), second
    )


class DPLRSSMKernel(nn.Module):
    """Convolution kernels of H S4 (DPLR) neurons; same interface as ``DiagonalSSMKernel``.

    Args:
        d_model: number of neurons H.
        channels: kernels per neuron (2 for a two-sided kernel).
        settings: the block's settings; read: ``d_state`` (N/2 stored conjugate-pair modes),
            ``init`` (``legs``, the only NPLR init implemented), ``dt_min``/``dt_max``, and the
            learning rates (:func:`~pspikessm.models.ssm_parameters.tag_kernel_parameters`).
        shared: one (Λ, p, B) per layer (S4's ``n_ssm: 1``, the paper's LRA setting) or one
            per neuron (``False``: ``n_ssm: null``, the paper's Pathfinder setting). C, dt and
            D are per neuron.
        dt_transform: ``dt = softplus(inv_dt)`` (S4's default, the official configs') or
            ``exp(inv_dt)``.
        b_clip: clip the imaginary part of the initial B to [-b_clip, b_clip], as S4's
            ``hippo.nplr`` does (None: no clipping).

    Parameters: ``inv_dt`` (H,), ``log_w_real``/``w_imag`` (S, N/2), ``p``, ``b`` (S, N/2, 2),
    ``c`` (C, H, N/2, 2), with S = 1 (shared) or H (complex numbers as real pairs).
    """

    def __init__(
        self,
        d_model: int,
        channels: int = 1,
        settings: BlockSettings | None = None,
        shared: bool = True,
        dt_transform: str = "softplus",
        b_clip: float | None = 2.0,
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
        self.inv_dt = nn.Parameter(init_inv_dt(d_model, settings, dt_transform))
        # Re(Λ) = -exp(log_w_real) < 0 and A = Λ - p p* has a negative definite Hermitian
        # part, so every neuron stays stable whatever p becomes.
        self.log_w_real = nn.Parameter(torch.log(-nplr.w.real).float().repeat(copies, 1))
        self.w_imag = nn.Parameter(nplr.w.imag.float().repeat(copies, 1))  # (S N/2)
        self.p = nn.Parameter(torch.view_as_real(nplr.p.to(torch.complex64)).repeat(copies, 1, 1))
        self.b = nn.Parameter(torch.view_as_real(b.to(torch.complex64)).repeat(copies, 1, 1))
        modes = settings.d_state // 2
        c = torch.randn(channels, d_model, modes, dtype=torch.complex64)  # (C H N/2)
        self.c = nn.Parameter(torch.view_as_real(c))
        ssm = [self.log_w_real, self.w_imag, self.p, self.b]
        tag_kernel_parameters(settings, ssm, self.inv_dt, self.c)

    def dplr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Δ, Λ, p, B)``: Δ (H,) real; Λ, p, B (H, N/2) complex (shared ones broadcast)."""
        dt = dt_of(self.inv_dt, self.dt_transform)
        w = torch.complex(-torch.exp(self.log_w_real), self.w_imag)
        p, b = torch.view_as_complex(self.p), torch.view_as_complex(self.b)
        shape = (self.d_model, w.shape[-1])
        return dt, w.expand(shape), p.expand(shape), b.expand(shape)

    @property
    def c_complex(self) -> torch.Tensor:
        return torch.view_as_complex(self.c)  # (C H N/2)

    def dense(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The full state space: ``Δ`` (H,), ``A`` (H, N, N), ``B`` (H, N), ``C`` (C, H, N).

        Full vectors are ``[x, conj(x)]``; ``A = diag(Λ_full) - p_full p_full*``.
        """
        dt, w, p, b = self.dplr()
        w_full = torch.cat([w, w.conj()], dim=-1)  # (H N)
        p_full = torch.cat([p, p.conj()], dim=-1)  # (H N)
        a = torch.diag_embed(w_full) - p_full.unsqueeze(-1) * p_full.conj().unsqueeze(-2)
        c = self.c_complex
        return dt, a, torch.cat([b, b.conj()], dim=-1), torch.cat([c, c.conj()], dim=-1)

    def discretize(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bilinear discretisation: ``Ā`` (H, N, N), ``B̄`` (H, N), ``C`` (C, H, N), complex."""
        dt, a, b, c = self.dense()
        eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
        half_step = (dt / 2).view(-1, 1, 1)
        backward = eye - half_step * a  # (H N N)
        a_bar = torch.linalg.solve(backward, eye + half_step * a)
        b_bar = torch.linalg.solve(backward, dt.unsqueeze(-1) * b)
        return a_bar, b_bar, c

    def forward(self, length: int) -> torch.Tensor:
        """Returns the kernels ``K̄`` of shape (C, H, L) for ``L = length``."""
        dt, w, p, b = self.dplr()
        a_bar, _, c_full = self.discretize()
        modes = w.shape[-1]
        power = torch.linalg.matrix_power(a_bar, length)  # (H N N)
        c_tilde = c_full - torch.einsum("chn,hnm->chm", c_full, power)  # (C H N)
        c_tilde = c_tilde[..., :modes]  # the other half is its conjugate
        k = torch.arange(length // 2 + 1, device=dt.device, dtype=torch.float64)
        omega = torch.exp(-2j * math.pi * k / length).to(w.dtype)  # (K) roots of unity
        numerator = 1 - omega  # (K)
        scale = (1 + omega) * (dt / 2).unsqueeze(-1)  # (H K)
        k00 = cauchy_conj(c_tilde * b, numerator, scale, w)  # (C H K)
        k01 = cauchy_conj(c_tilde * p, numerator, scale, w)  # (C H K)
        k10 = cauchy_conj(p.conj() * b, numerator, scale, w)  # (H K)
        k11 = cauchy_conj(p.conj() * p, numerator, scale, w)  # (H K)
        k_hat = dt.unsqueeze(-1) * (k00 - scale * k01 * k10 / (1 + scale * k11))  # (C H K)
        return torch.fft.irfft(k_hat, n=length)  # (C H L)

    def recurrence(self) -> DenseRecurrence:
        """The step-by-step form of the causal kernel (discretised once, now)."""
        return DenseRecurrence(self)


class DenseRecurrence:
    """``h[t] = Ā h[t-1] + B̄ x[t]``, ``u[t] = Re(C h[t])`` with ``h`` (B, H, N) complex and the
    dense bilinear ``Ā`` (H, N, N): the system of :class:`DPLRSSMKernel`'s causal kernel."""

    def __init__(self, kernel: DPLRSSMKernel) -> None:
        self.a_bar, self.b_bar, c = kernel.discretize()
        self.c = c[0]  # (H N) the causal channel

    def initial_state(self, batch: int) -> torch.Tensor:
        return self.b_bar.new_zeros((batch, *self.b_bar.shape))

    def step(self, x: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` (B, H) real → ``u`` (B, H) real and the next state."""
        state = torch.einsum("hnm,bhm->bhn", self.a_bar, state) + self.b_bar * x.unsqueeze(-1)
        return (state * self.c).sum(-1).real.to(x.dtype), state
