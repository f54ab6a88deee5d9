"""Leaky integrate-and-fire neuron (the LIF-SSM baseline), iterated over time.

``v[t] = β v[t-1] + I[t]``, ``s[t] = H(v[t] - θ)``, then reset: ``v[t] -= θ s[t]`` (subtract)
or ``v[t] *= 1 - s[t]`` (zero). The reset is detached from the graph, as snnTorch does. The
spike's gradient is a surrogate: ``arctan`` (``1 / (1 + (π α x / 2)^2) · α / 2``) or
``fast_sigmoid`` (``1 / (1 + k |x|)^2``). This is the sequential model P-SpikeSSM replaces:
the loop over t is written as users write it, one set of tensor operations over (B, H) per
step, so the benchmark compares against an honest LIF implementation; the neuron itself runs
that loop outside autograd (:mod:`pspikessm.models.neurons.lif`) with the same results."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

RESETS = ("subtract", "zero")


def arctan_slope(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """d/dx of ``arctan(π α x / 2) / π + 1/2``: the arctan surrogate of width ``alpha``."""
    return alpha / 2 / (1 + (math.pi / 2 * alpha * x) ** 2)


def fast_sigmoid_slope(x: torch.Tensor, alpha: float) -> torch.Tensor:
    """``1 / (1 + α|x|)²``: the fast-sigmoid surrogate of slope ``alpha``."""
    return 1 / (1 + alpha * x.abs()) ** 2


SURROGATE_SLOPES = {"arctan": arctan_slope, "fast_sigmoid": fast_sigmoid_slope}


class SurrogateSpike(torch.autograd.Function):
    """Forward: the Heaviside step ``1[x > 0]``. Backward: ``slope(x, alpha)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float, slope) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha, ctx.slope = alpha, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.slope(x, ctx.alpha), None, None


class LIFNeuron(nn.Module):
    """LIF spikes from an input current, one time step after the other.

    Args:
        beta: membrane decay factor per step (0 < β ≤ 1).
        threshold: firing threshold θ.
        reset: ``subtract`` (θ is removed after a spike) or ``zero``.
        surrogate: ``arctan`` or ``fast_sigmoid``.
        alpha: surrogate width (arctan, default 2) or slope (fast sigmoid, 25 is snnTorch's).

    Inputs: ``current`` (B, H, L); optional ``mask`` broadcastable to it (0 at padding);
    ``uniforms`` is accepted for interface parity with :class:`SpikeSampler` and ignored.
    Outputs: spikes (B, H, L), 0.0 or 1.0.
    """

    emits_spikes = True  # its outputs are spikes: see pspikessm.models.neurons

    def __init__(
        self,
        beta: float = 0.9,
        threshold: float = 1.0,
        reset: str = "subtract",
        surrogate: str = "arctan",
        alpha: float | None = None,
    ) -> None:
        super().__init__()
        if surrogate not in SURROGATE_SLOPES:
            raise ValueError(
                f"unknown LIF surrogate {surrogate!r}; expected one of {sorted(SURROGATE_SLOPES)}"
            )
        if reset not in RESETS:
            raise ValueError(f"unknown LIF reset {reset!r}; expected one of {RESETS}")
        self.beta, self.threshold, self.reset, self.surrogate = beta, threshold, reset, surrogate
        self.alpha = alpha if alpha is not None else (2.0 if surrogate == "arctan" else 25.0)
        self._slope = SURROGATE_SLOPES[surrogate]

    def advance(
        self, current: torch.Tensor, membrane: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One update: ``current`` (B, H), ``membrane`` (B, H) → spikes (B, H), new membrane."""
        membrane = self.beta * membrane + current
        spikes = SurrogateSpike.apply(membrane - self.threshold, self.alpha, self._slope)
        fired = spikes.detach()
        if self.reset == "subtract":
            membrane = membrane - self.threshold * fired
        else:
            membrane = membrane * (1 - fired)
        return spikes, membrane

    def forward(
        self,
        current: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Spikes (B, H, L) for ``current`` (B, H, L), the membrane starting at rest: the whole
        loop as one autograd function (:class:`LIFSequence`)."""
        subtract = self.reset == "subtract"
        out = LIFSequence.apply(
            current, self.beta, self.threshold, subtract, self.alpha, self._slope
        )
        return out if mask is None else out * mask

    def forward_reference(
        self,
        current: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`forward` as users write the loop: autograd records every step."""
        membrane = current.new_zeros(current.shape[:2])  # (B H)
        spikes = []
        # unbind, not current[..., t]: each indexing op's backward would write a full-size
        # (B, H, L) gradient, making backward quadratic in L; unbind's backward stacks once.
        for current_t in current.unbind(-1):
            s, membrane = self.advance(current_t, membrane)
            spikes.append(s)
        out = torch.stack(spikes, dim=-1)  # (B H L)
        return out if mask is None else out * mask

    def step(
        self,
        current: torch.Tensor,
        membrane: torch.Tensor | None,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Streaming: ``current`` (B, H, 1) and the membrane (B, H) (None: at rest) → spikes
        (B, H, 1) and the next membrane; :meth:`forward` one step at a time."""
        membrane = current.new_zeros(current.shape[:2]) if membrane is None else membrane
        spikes, membrane = self.advance(current[..., 0], membrane)
        spikes = spikes.unsqueeze(-1)  # (B H 1)
        return (spikes if mask is None else spikes * mask), membrane

    def extra_repr(self) -> str:
        return (
            f"beta={self.beta}, threshold={self.threshold}, reset={self.reset!r}, "
            f"surrogate={self.surrogate!r}, alpha={self.alpha}"
        )


# The LIF loop over a whole sequence as one autograd function (the LIF-SSM baseline's fast path).
#
# :meth:`LIFNeuron.forward_reference` runs the loop as users write it: a few autograd-tracked
# tensor operations per time step, each recorded and replayed by autograd. :class:`LIFSequence`
# computes the same spikes and gradients with the loop outside autograd: forward updates the
# membrane in place (no graph), backward runs the reverse-time recurrence of the membrane's
# gradient by hand. Same maths (detached reset, surrogate derivative of the Heaviside):
#
#     v[t] = β v'[t-1] + I[t],   s[t] = 1[v[t] > θ],
#     v'[t] = v[t] - θ s[t] (subtract) or v[t] (1 - s[t]) (zero), s detached in the reset;
#     d[t] = ∂L/∂v[t] = g[t] σ'(v[t] - θ) + β r[t] d[t+1],   r[t] = 1 or 1 - s[t];
#     ∂L/∂I[t] = d[t].


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
