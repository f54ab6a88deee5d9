"""Deterministic binary neuron (Binary S4D baseline): Heaviside with a straight-through gradient."""

from __future__ import annotations

import torch
from torch import nn


class StraightThroughHeaviside(torch.autograd.Function):
    """Forward: ``s = 1[x > threshold]``. Backward: ``ds/dx = 1`` inside ``[0, 1]``, else 0.

    The window is the same one the P-SpikeSSM clamp gives its probabilities, so the binary and
    the stochastic neuron differ only in how the spike is drawn, not in where gradient flows.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, threshold: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_spikes * ((x >= 0) & (x <= 1)).to(grad_spikes.dtype), None


class HeavisideSpike(nn.Module):
    """Binary spikes ``s = 1[x > threshold]`` (0.5: the rounded P-SpikeSSM probability).

    Inputs: ``x`` (B, H, L); optional ``mask`` broadcastable to ``x`` (0 at padding);
    ``uniforms`` is accepted for interface parity with :class:`SpikeSampler` and ignored.
    Outputs: spikes (0.0 or 1.0) of ``x``'s shape and dtype.
    """

    emits_spikes = True  # its outputs are spikes: see pspikessm.models.neurons
    firing_window = (0.0, 1.0)  # where the straight-through gradient passes

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        out = StraightThroughHeaviside.apply(x, self.threshold)
        return out if mask is None else out * mask

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}"
