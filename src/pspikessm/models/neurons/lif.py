"""Leaky integrate-and-fire neuron (the LIF-SSM baseline), iterated over time.

``v[t] = β v[t-1] + I[t]``, ``s[t] = H(v[t] - θ)``, then reset: ``v[t] -= θ s[t]`` (subtract)
or ``v[t] *= 1 - s[t]`` (zero). The reset is detached from the graph, as snnTorch does. The
spike's gradient is a surrogate: ``arctan`` (``1 / (1 + (π α x / 2)^2) · α / 2``) or
``fast_sigmoid`` (``1 / (1 + k |x|)^2``). This is the sequential model P-SpikeSSM replaces:
the loop over t is written as users write it, one set of tensor operations over (B, H) per
step, so the benchmark compares against an honest LIF implementation; the neuron itself runs
that loop outside autograd (:mod:`pspikessm.models.lif_sequence`) with the same results.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pspikessm.models.lif_sequence import LIFSequence

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
