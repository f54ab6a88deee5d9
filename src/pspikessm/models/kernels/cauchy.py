"""Cauchy sums of the DPLR kernel's generating function, with a memory-lean backward.

``S[v, h, k] = Σ_n v[v, h, n] / (a_k - β_hk w_hn) + conj(v[v, h, n]) / (a_k - β_hk conj(w_hn))``
over the N/2 stored modes; the second term is the implied conjugate half of the state.
:func:`cauchy_sums_reference` is the plain complex-autograd form; :func:`cauchy_sums` (the fast
path, :class:`CauchySums`) computes the same values and gradients with four batched products
and a few elementwise passes per chunk of frequencies, keeps nothing of size H × K × N/2 for
backward (it recomputes the reciprocals there), and bounds its temporaries by chunking the
K frequencies, so a Path-X kernel (K = 8193, H = 256, N/2 = 32) needs hundreds of MB, not GB.
"""

from __future__ import annotations

import torch

#: Complex numbers in one chunk's (H, k, N/2) temporaries (2^24: 128 MB each in complex64).
#: Every layer's kernel is one computation (:mod:`pspikessm.models.kernel_bank`): ListOps'
#: 8 kernels (H = 8 × 128, K = 1025, N/2 = 8) fit one chunk, each more chunk is ~30 more ops.
CHUNK_ELEMENTS = 1 << 24


def cauchy_sums_reference(
    v: torch.Tensor, numerator: torch.Tensor, scale: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """The Cauchy sums by plain complex autograd (the reference of :class:`CauchySums`).

    Shapes: ``v`` (V, H, N/2); ``numerator`` a (K,); ``scale`` β (H, K); ``w`` (H, N/2).
    Returns (V, H, K).
    """
    first, second = _reciprocals(numerator, scale, w)  # (H K N/2) each
    return torch.einsum("vhn,hkn->vhk", v, first) + torch.einsum("vhn,hkn->vhk", v.conj(), second)


def _reciprocals(
    numerator: torch.Tensor, scale: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``r = 1/(a - β w)`` and ``r' = 1/(a - β w̄)``, each (H, K, N/2)."""
    a = numerator.view(1, -1, 1)  # (1 K 1)
    beta = scale.unsqueeze(-1)  # (H K 1)
    return (a - beta * w.unsqueeze(1)).reciprocal_(), (
        a - beta * w.conj().unsqueeze(1)
    ).reciprocal_()


def _chunks(frequencies: int, heads: int, modes: int) -> list[slice]:
    size = max(1, CHUNK_ELEMENTS // (heads * modes))
    return [slice(start, start + size) for start in range(0, frequencies, size)]


class CauchySums(torch.autograd.Function):
    """:func:`cauchy_sums_reference` with a hand-written, chunked backward.

    With ``G = ∂L/∂S̄`` (PyTorch's convention for complex tensors), ``r = 1/(a - β w)`` and
    ``r' = 1/(a - β w̄)``: ``∂L/∂v̄ = Σ_k Ḡ r' + G r̄``,
    ``∂L/∂w̄ = Σ_k Σ_v Ḡ v̄ β r'² + G conj(v β r²)``,
    ``∂L/∂β̄ = Σ_n Σ_v G conj(v w r² + v̄ w̄ r'²)``.
    """

    @staticmethod
    def forward(ctx, v, numerator, scale, w):
        vt = v.transpose(0, 1)  # (H V N/2)
        parts = []
        for part in _chunks(numerator.shape[0], *w.shape):
            first, second = _reciprocals(numerator[part], scale[:, part], w)  # (H k N/2)
            parts.append(
                torch.bmm(vt, first.transpose(1, 2)) + torch.bmm(vt.conj(), second.transpose(1, 2))
            )  # (H V k)
        ctx.save_for_backward(v, numerator, scale, w)
        return torch.cat(parts, dim=-1).transpose(0, 1)  # (V H K)

    @staticmethod
    def backward(ctx, grad):
        v, numerator, scale, w = ctx.saved_tensors
        g_all = grad.transpose(0, 1)  # (H V K)
        vt = v.transpose(0, 1)  # (H V N/2)
        grad_v = torch.zeros_like(vt) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(w) if ctx.needs_input_grad[3] else None
        grad_scale = torch.zeros_like(scale) if ctx.needs_input_grad[2] else None
        for part in _chunks(numerator.shape[0], *w.shape):
            first, second = _reciprocals(numerator[part], scale[:, part], w)  # (H k N/2)
            g = g_all[..., part]  # (H V k)
            if grad_v is not None:
                grad_v += torch.bmm(g.conj(), second) + torch.bmm(g, first.conj())
            if grad_w is None and grad_scale is None:
                continue
            on_first = torch.bmm(g.transpose(1, 2), vt.conj())  # Σ_v G v̄: (H k N/2)
            on_first *= first.mul_(first).conj_physical_()  # G v̄ conj(r²)
            on_second = torch.bmm(g.transpose(1, 2), vt)  # Σ_v G v
            on_second *= second.mul_(second).conj_physical_()  # G v conj(r'²)
            # The sums over k and over n as batched products: one read of each (H k N/2)
            # term, no temporary of its size.
            if grad_w is not None:
                beta_bar = scale[:, part].conj().unsqueeze(1)  # (H 1 k)
                grad_w += (
                    torch.bmm(beta_bar, on_first) + torch.bmm(beta_bar, on_second).conj()
                ).squeeze(1)
            if grad_scale is not None:
                grad_scale[:, part] = (
                    torch.bmm(on_first, w.conj().unsqueeze(-1))
                    + torch.bmm(on_second, w.unsqueeze(-1))
                ).squeeze(-1)
        if grad_v is not None:
            grad_v = grad_v.transpose(0, 1)
        return grad_v, None, grad_scale, grad_w


def cauchy_sums(
    v: torch.Tensor, numerator: torch.Tensor, scale: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """:func:`cauchy_sums_reference` by :class:`CauchySums` (the fast path); same shapes."""
    return CauchySums.apply(v, numerator, scale, w)
