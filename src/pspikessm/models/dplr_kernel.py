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

from pspikessm.models.diagonal_kernel import log_uniform_dt
from pspikessm.models.hippo import legs_nplr
from pspikessm.optim import tag_optim

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
        d_state: state size N per neuron (N/2 stored conjugate-pair modes).
        channels: kernels per neuron (2 for a two-sided kernel).
        init: ``legs`` (HiPPO-LegS; the only NPLR init implemented).
        shared: one (Λ, p, B) per layer (S4's default, the paper's LRA setting) or one per
            neuron (``False``, the paper's Pathfinder setting). C, dt and D are per neuron.
        dt_min, dt_max: range of the log-uniform initial step.
        ssm_lr: learning rate of Λ, p and B (zero weight decay).
        dt_lr: learning rate of dt; ``None`` uses the global rate (still zero weight decay).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        channels: int = 1,
        init: str = "legs",
        shared: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        dt_lr: float | None = None,
    ) -> None:
        super().__init__()
        if init not in DPLR_INITS:
            raise ValueError(f"unknown DPLR SSM init {init!r}; expected one of {DPLR_INITS}")
        nplr = legs_nplr(d_state)  # raises on odd d_state
        copies = 1 if shared else d_model
        self.d_model = d_model
        self.shared = shared
        self.log_dt = nn.Parameter(log_uniform_dt(d_model, dt_min, dt_max))
        # Re(Λ) = -exp(log_w_real) < 0 and A = Λ - p p* has a negative definite Hermitian
        # part, so every neuron stays stable whatever p becomes.
        self.log_w_real = nn.Parameter(torch.log(-nplr.w.real).float().repeat(copies, 1))
        self.w_imag = nn.Parameter(nplr.w.imag.float().repeat(copies, 1))  # (S N/2)
        self.p = nn.Parameter(torch.view_as_real(nplr.p.to(torch.complex64)).repeat(copies, 1, 1))
        self.b = nn.Parameter(torch.view_as_real(nplr.b.to(torch.complex64)).repeat(copies, 1, 1))
        c = torch.randn(channels, d_model, d_state // 2, dtype=torch.complex64)  # (C H N/2)
        self.c = nn.Parameter(torch.view_as_real(c))
        for parameter in (self.log_w_real, self.w_imag, self.p, self.b):
            tag_optim(parameter, lr=ssm_lr, weight_decay=0.0)
        if dt_lr is None:
            tag_optim(self.log_dt, weight_decay=0.0)
        else:
            tag_optim(self.log_dt, lr=dt_lr, weight_decay=0.0)

    def dplr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(Δ, Λ, p, B)``: Δ (H,) real; Λ, p, B (H, N/2) complex (shared ones broadcast)."""
        dt = torch.exp(self.log_dt)
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
