"""SpikeSampler: Bernoulli spikes for all time steps at once, with the stochastic surrogate."""

from __future__ import annotations

import torch
from torch import nn


def sample_spikes_reference(
    x: torch.Tensor,
    mask: torch.Tensor | None = None,
    uniforms: torch.Tensor | None = None,
    signed: bool = False,
) -> torch.Tensor:
    """The plain form of :class:`StochasticSpike`: clamp, draw, compare, mask; the gradient
    is that of ``E[s] = clamp(x, 0, 1)`` (straight through the sample). ``signed``: an ON
    spike ``+1`` with probability ``clamp(x, 0, 1)`` and an OFF spike ``-1`` with probability
    ``clamp(-x, 0, 1)``, one uniform for both (at most one of them can fire); the gradient
    is that of ``E[s] = clamp(x, -1, 1)``."""
    if uniforms is None:
        uniforms = torch.rand_like(x, dtype=torch.float32)
    if signed:  # E[s] = clamp(x, -1, 1); at most one of the ON and OFF spikes fires
        expectation = x.clamp(-1.0, 1.0)
        on, off = (uniforms < x.float()), (uniforms < -x.float())
        binary = on.to(x.dtype) - off.to(x.dtype)
    else:
        expectation = x.clamp(0.0, 1.0)
        binary = (uniforms < expectation.float()).to(x.dtype)
    spikes = expectation + (binary - expectation).detach()
    return spikes if mask is None else spikes * mask


class StochasticSpike(torch.autograd.Function):
    """Forward: ``s = 1[z < clamp(x, 0, 1)]`` (times ``mask``). Backward: the gradient of
    ``E[s] = clamp(x, 0, 1)``: ``ds/dx = 1`` where ``0 < x < 1`` (and the mask is 1), else 0,
    as torch's clamp passes it.

    ``signed``: ``s = sign(x) 1[z < |x|]`` in {-1, 0, 1}, the ON and OFF spikes of
    :func:`sample_spikes_reference`; the gradient passes where ``-1 < x < 1``.

    Fused for speed and memory: with ``z`` in [0, 1) (drawn here, or given: the caller's
    uniforms must lie in [0, 1) too, as ``torch.rand`` draws them), ``z < clamp(x, 0, 1)``
    equals ``z < x``, so no clamped copy is made; one uniform draw (float32, also under autocast: bf16's 8
    mantissa bits would bias the rates) becomes the spike tensor in place; backward keeps
    one boolean per element (where the gradient passes), not a float tensor.
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        uniforms: torch.Tensor | None,
        mask: torch.Tensor | None,
        signed: bool = False,
    ) -> torch.Tensor:
        if signed:
            return _signed_spikes(ctx, x, uniforms, mask)
        if uniforms is None:
            spikes = torch.rand_like(x, dtype=torch.float32).lt_(x)  # (z < x) as 0.0 / 1.0
            if mask is not None:
                spikes.mul_(mask)
        else:  # z in [0, 1): z < x, as the official code compares (no clamped copy)
            below = torch.lt(uniforms, x)  # bool; the mask's product makes it 0.0 / 1.0
            spikes = below.to(torch.float32) if mask is None else below * mask
        if ctx.needs_input_grad[0]:
            # One bool per element; the mask is applied in backward (an op there, not two
            # here: the mask's bool copy and the logical and).
            ctx.save_for_backward((x > 0.0).logical_and_(x < 1.0), mask)
        return spikes.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor) -> tuple[torch.Tensor | None, None, ...]:
        passes, mask = ctx.saved_tensors
        grad = grad_spikes * passes
        return grad if mask is None else grad.mul_(mask), None, None, None


def _signed_spikes(ctx, x: torch.Tensor, uniforms, mask) -> torch.Tensor:
    """:class:`StochasticSpike`'s forward with ``signed``: ``sign(x) 1[z < |x|]``."""
    magnitude = x.abs()
    if uniforms is None:
        uniforms = torch.rand_like(x, dtype=torch.float32)
    spikes = torch.lt(uniforms, magnitude).to(torch.float32).mul_(torch.sign(x))
    if mask is not None:
        spikes.mul_(mask)
    if ctx.needs_input_grad[0]:
        ctx.save_for_backward(magnitude < 1.0, mask)
    return spikes.to(x.dtype)


class SpikeSampler(nn.Module):
    """Draws spikes ``s ~ Bernoulli(clamp(x, 0, 1))`` in parallel over (B, H, L).

    The clamp passes gradient only where ``x`` lies in [0, 1]; through the sample itself the
    gradient is that of the expectation (:class:`StochasticSpike`).

    Args:
        sample_in_eval: keep drawing spikes in evaluation (as the paper's code does); False
            returns the probabilities ``p`` instead (deterministic). The LightningModule sets
            it from ``model.eval_mode``.
        signed: two populations per neuron, ON spikes (+1) with probability
            ``clamp(x, 0, 1)`` and OFF spikes (-1) with probability ``clamp(-x, 0, 1)``; the
            firing window (where gradient passes) widens to (-1, 1). In evaluation without
            sampling it returns ``E[s] = clamp(x, -1, 1)``. Both populations count in the
            firing rate and the energy estimate.

    Inputs: ``x`` (any shape); optional ``mask`` broadcastable to ``x`` (1 at valid time
    steps, 0 at padding: padded steps never spike); optional ``uniforms`` in [0, 1) of ``x``'s shape to
    fix the random draw. Outputs: spikes of ``x``'s shape and dtype (0.0 or 1.0), or ``p``.

    Forward hooks on this module see every spike tensor the network produces; nothing is kept
    when no hook is registered.
    """

    emits_spikes = True  # its outputs are spikes: see pspikessm.models.neurons
    takes_uniforms = True  # spikes are 1[z < p]: the block may share z between sites

    def __init__(self, sample_in_eval: bool = True, signed: bool = False) -> None:
        super().__init__()
        self.sample_in_eval = sample_in_eval
        self.signed = signed
        #: Drives inside this interval pass gradient (the monitors' ``drive_outside``).
        self.firing_window = (-1.0, 1.0) if signed else (0.0, 1.0)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.training or self.sample_in_eval:
            return StochasticSpike.apply(x, uniforms, mask, self.signed)
        probability = x.clamp(*self.firing_window)
        return probability if mask is None else probability * mask

    def extra_repr(self) -> str:
        return f"sample_in_eval={self.sample_in_eval}, signed={self.signed}"
