"""A spike site's elementwise chain as one Triton kernel, with its PyTorch reference beside it.

The two chains of a P-SpikeSSM block (issue 23), each ending in :class:`StochasticSpike`
(``s = 1[z < q]``, times the mask; gradient ``1[0 < q < 1]`` times the mask):

- the input site: ``q = a ⊙ x + b`` (the branch's drive affine) → spikes;
- the output site: ``q = a ⊙ GELU(u) + b`` (the branch's output affine; the second branch
  has none: ``a = 1, b = 0``) → spikes.

Eager PyTorch runs each as 8-10 kernels (affine, comparisons, casts, mask products, the
backward's mask); the fused forward reads ``x`` (or ``u``), the uniforms and the mask once and
writes the spikes and one byte per element for the backward. The uniforms come from the
caller (``torch.rand``), so both paths draw the same spikes. :func:`drive_spikes` picks the
kernel for CUDA tensors when Triton imports and no ``torch.compile`` is tracing (inductor
fuses these chains itself), else the reference; the reference is the definition, and
``tests/test_fused_spikes.py`` checks the kernel against it under ``TRITON_INTERPRET=1``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from pspikessm.models.neurons.pspike import StochasticSpike

try:  # an optional dependency: without it (or without a GPU) the reference runs
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with CUDA builds of torch
    triton = None

BLOCK = 1024


def drive_spikes_reference(
    x: torch.Tensor,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    uniforms: torch.Tensor,
    mask: torch.Tensor | None = None,
    gelu: bool = False,
) -> torch.Tensor:
    """Spikes ``1[z < a ⊙ f(x) + b]`` (times ``mask``), ``f`` GELU or the identity.

    ``x`` (B, H, L); ``scale``, ``shift`` (H,) or None (no affine); ``uniforms`` (B, H, L) in
    [0, 1); ``mask`` (B, 1, L) or None. Returns (B, H, L) in ``x``'s dtype.
    """
    q = F.gelu(x) if gelu else x
    if scale is not None:
        q = torch.addcmul(shift.unsqueeze(-1), scale.unsqueeze(-1), q)
    return StochasticSpike.apply(q, uniforms, mask)


def use_kernel(x: torch.Tensor) -> bool:
    """Whether :func:`drive_spikes` runs the Triton kernel for ``x``."""
    return (
        triton is not None
        and x.is_cuda
        and x.dtype == torch.float32
        and not torch.compiler.is_compiling()
    )


def drive_spikes(
    x: torch.Tensor,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    uniforms: torch.Tensor,
    mask: torch.Tensor | None = None,
    gelu: bool = False,
) -> torch.Tensor:
    """:func:`drive_spikes_reference`, by one Triton kernel where :func:`use_kernel` says."""
    if not use_kernel(x):
        return drive_spikes_reference(x, scale, shift, uniforms, mask, gelu)
    return FusedDriveSpikes.apply(x, scale, shift, uniforms, mask, gelu)


class FusedDriveSpikes(torch.autograd.Function):
    """The Triton forward of :func:`drive_spikes_reference`; the backward, from the one byte
    per element the forward keeps (where the gradient passes), in PyTorch."""

    @staticmethod
    def forward(ctx, x, scale, shift, uniforms, mask, gelu):
        x, uniforms = x.contiguous(), uniforms.contiguous()
        batch, width, length = x.shape
        spikes = torch.empty_like(x)
        passes = torch.empty(x.shape, dtype=torch.int8, device=x.device)
        affine = scale is not None
        dummy = x.new_zeros(1)
        mask_flat = mask.expand(batch, 1, length).contiguous() if mask is not None else dummy
        grid = (triton.cdiv(x.numel(), BLOCK),)
        _drive_spikes_kernel[grid](
            x, scale if affine else dummy, shift if affine else dummy, uniforms, mask_flat,
            spikes, passes, x.numel(), width, length,
            AFFINE=affine, MASKED=mask is not None, GELU=gelu, BLOCK=BLOCK,
        )  # fmt: skip
        ctx.save_for_backward(x, passes, scale)
        ctx.gelu, ctx.affine = gelu, affine
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes):
        x, passes, scale = ctx.saved_tensors
        grad_q = grad_spikes * passes  # (B H L)
        grad_x = grad_scale = grad_shift = None
        activation = F.gelu(x) if ctx.gelu else x
        if ctx.affine:
            grad_scale = (grad_q * activation).sum(dim=(0, 2))
            grad_shift = grad_q.sum(dim=(0, 2))
            grad_q = grad_q * scale.unsqueeze(-1)
        if ctx.needs_input_grad[0]:
            grad_x = grad_q * gelu_slope(x) if ctx.gelu else grad_q
        return grad_x, grad_scale, grad_shift, None, None, None


def gelu_slope(x: torch.Tensor) -> torch.Tensor:
    """``d GELU(x) / dx = Φ(x) + x φ(x)`` (the exact, erf GELU)."""
    cdf = 0.5 * (1.0 + torch.erf(x * (1.0 / math.sqrt(2.0))))
    return cdf + x * torch.exp(-0.5 * x * x) * (1.0 / math.sqrt(2.0 * math.pi))


if triton is not None:

    @triton.jit
    def _drive_spikes_kernel(
        x_ptr, scale_ptr, shift_ptr, u_ptr, mask_ptr, out_ptr, pass_ptr, n, width, length,
        AFFINE: tl.constexpr, MASKED: tl.constexpr, GELU: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        """One element of (B, H, L) per lane: q = a f(x) + b, s = 1[z < q] m, pass = 0<q<1, m."""
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        inside = offsets < n
        q = tl.load(x_ptr + offsets, mask=inside, other=0.0)
        if GELU:
            q = 0.5 * q * (1.0 + tl.math.erf(q * 0.7071067811865476))
        if AFFINE:
            channel = (offsets // length) % width
            a = tl.load(scale_ptr + channel, mask=inside, other=0.0)
            b = tl.load(shift_ptr + channel, mask=inside, other=0.0)
            q = b + a * q
        z = tl.load(u_ptr + offsets, mask=inside, other=1.0)
        spikes = (z < q).to(tl.float32)
        passes = (q > 0.0) & (q < 1.0)
        if MASKED:
            step = (offsets // (width * length)) * length + offsets % length
            m = tl.load(mask_ptr + step, mask=inside, other=0.0)
            spikes = spikes * m
            passes = passes & (m != 0.0)
        tl.store(out_ptr + offsets, spikes, mask=inside)
        tl.store(pass_ptr + offsets, passes.to(tl.int8), mask=inside)
