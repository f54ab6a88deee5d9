"""The LIF loop over a whole sequence as one autograd function (the LIF-SSM baseline's fast path).

:meth:`LIFNeuron.forward_reference` runs the loop as users write it: a few autograd-tracked
tensor operations per time step, each recorded and replayed by autograd. :class:`LIFSequence`
computes the same spikes and gradients with the loop outside autograd: forward updates the
membrane in place (no graph), backward runs the reverse-time recurrence of the membrane's
gradient by hand. Same maths (detached reset, surrogate derivative of the Heaviside):

    v[t] = β v'[t-1] + I[t],   s[t] = 1[v[t] > θ],
    v'[t] = v[t] - θ s[t] (subtract) or v[t] (1 - s[t]) (zero), s detached in the reset;
    d[t] = ∂L/∂v[t] = g[t] σ'(v[t] - θ) + β r[t] d[t+1],   r[t] = 1 or 1 - s[t];
    ∂L/∂I[t] = d[t].
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class LIFSequence(torch.autograd.Function):
    """Spikes (B, H, L) of LIF neurons driven by ``current`` (B, H, L) from rest."""

    @staticmethod
    def forward(
        ctx,
        current: torch.Tensor,
        beta: float,
        threshold: float,
        subtract: bool,
        alpha: float,
        slope: Callable[[torch.Tensor, float], torch.Tensor],
    ) -> torch.Tensor:
        steps = current.movedim(-1, 0).contiguous()  # (L B H): each step contiguous
        above = torch.empty_like(steps)  # v[t] - θ, the surrogate's argument
        spikes = torch.empty_like(steps)
        membrane = torch.zeros_like(steps[0])  # (B H)
        for t in range(steps.shape[0]):
            membrane.mul_(beta).add_(steps[t])
            torch.sub(membrane, threshold, out=above[t])
            torch.gt(above[t], 0.0, out=spikes[t])  # 1.0 / 0.0
            if subtract:
                membrane.sub_(spikes[t], alpha=threshold)
            else:
                membrane.mul_(1.0 - spikes[t])
        ctx.save_for_backward(above, spikes)
        ctx.beta, ctx.subtract, ctx.alpha, ctx.slope = beta, subtract, alpha, slope
        return spikes.movedim(0, -1)  # (B H L)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        above, spikes = ctx.saved_tensors
        local = grad_spikes.movedim(-1, 0) * ctx.slope(above, ctx.alpha)  # (L B H)
        carry_gain = ctx.beta if ctx.subtract else (1.0 - spikes) * ctx.beta
        grad = local  # d[t], filled backwards in place
        for t in range(grad.shape[0] - 2, -1, -1):
            gain = carry_gain if ctx.subtract else carry_gain[t]
            grad[t].add_(grad[t + 1] * gain)
        return grad.movedim(0, -1), None, None, None, None, None
