"""HiPPO-LegS matrices and their normal-plus-low-rank (NPLR) decomposition.

Shared by the diagonal (S4D-LegS) and the diagonal-plus-low-rank (S4) kernels, so both start
from exactly the same eigenvalues.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


def legs_transition(state_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The HiPPO-LegS state matrix ``A`` (N, N) and input matrix ``B`` (N,), float64."""
    q = torch.arange(state_size, dtype=torch.float64)
    row, col = torch.meshgrid(q, q, indexing="ij")
    r = 2 * q + 1
    transition = -(torch.where(row >= col, r[None, :].expand_as(row), 0.0) - torch.diag(q))
    scale = torch.sqrt(r)
    a = scale[:, None] * transition / scale[None, :]
    b = scale.clone()
    return a, b


class NPLR(NamedTuple):
    """``A = V (diag(w) - p p^*) V^*`` restricted to one half of each conjugate pair.

    Shapes: ``w`` (N/2,) complex eigenvalues with negative real part, ``p`` (N/2,) the
    low-rank factor, ``b`` (N/2,) the input vector, all in the eigenbasis ``v`` (N, N/2).
    """

    w: torch.Tensor
    p: torch.Tensor
    b: torch.Tensor
    v: torch.Tensor


def legs_nplr(state_size: int) -> NPLR:
    """Normal-plus-low-rank form of HiPPO-LegS (S4), keeping one eigenvalue per conjugate pair.

    ``A + p p^T`` is normal: its symmetric part is ``-I/2`` and its skew part is diagonalised
    by a Hermitian eigendecomposition, as in the S4 reference code.
    """
    if state_size % 2:
        raise ValueError(f"state size must be even (conjugate pairs), got {state_size}")
    a, b = legs_transition(state_size)
    q = torch.arange(state_size, dtype=torch.float64)
    p = torch.sqrt(q + 0.5)
    normal = a + p[:, None] * p[None, :]
    real_part = torch.diagonal(normal).mean()
    imag_part, vectors = torch.linalg.eigh(normal * -1j)
    order = torch.argsort(imag_part)
    imag_part, vectors = imag_part[order], vectors[:, order]
    half = state_size // 2
    # Eigenvalues come in conjugate pairs; the ascending sort puts one of each pair first.
    w = (real_part + 1j * imag_part[:half]).to(torch.complex128)
    v = vectors[:, :half]
    v_star = v.conj().T
    return NPLR(
        w=w,
        p=v_star @ p.to(torch.complex128),
        b=v_star @ b.to(torch.complex128),
        v=v,
    )
