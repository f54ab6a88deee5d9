"""SpikeSampler: Bernoulli spikes for all time steps at once, with the stochastic surrogate."""

from __future__ import annotations

import torch
from torch import nn

EVAL_MODES = ("sample", "expected")


class StochasticSpike(torch.autograd.Function):
    """Forward: ``s = 1[z < p]``. Backward: ``ds/dp = 1``, the gradient of ``E[s] = p``.

    Nothing is saved for backward: the surrogate is the identity on ``p``.
    """

    @staticmethod
    def forward(ctx, probability: torch.Tensor, uniforms: torch.Tensor | None) -> torch.Tensor:
        # Uniforms in float32 even under autocast: bf16 has 8 mantissa bits, and comparing
        # bf16 uniforms would bias the firing rates.
        if uniforms is None:
            uniforms = torch.rand_like(probability, dtype=torch.float32)
        return (uniforms < probability.float()).to(probability.dtype)

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_spikes, None


class SpikeSampler(nn.Module):
    """Draws spikes ``s ~ Bernoulli(clamp(x, 0, 1))`` in parallel over (B, H, L).

    The clamp passes gradient only where ``x`` lies in [0, 1]; through the sample itself the
    gradient is that of the expectation (:class:`StochasticSpike`).

    Args:
        eval_mode: in evaluation, ``sample`` keeps drawing spikes (as the paper's code does)
            and ``expected`` returns the probabilities ``p`` (deterministic).

    Inputs: ``x`` (any shape); optional ``mask`` broadcastable to ``x`` (1 at valid time
    steps, 0 at padding: padded steps never spike); optional ``uniforms`` of ``x``'s shape to
    fix the random draw. Outputs: spikes of ``x``'s shape and dtype (0.0 or 1.0), or ``p``.

    Forward hooks on this module see every spike tensor the network produces; nothing is kept
    when no hook is registered.
    """

    def __init__(self, eval_mode: str = "sample") -> None:
        super().__init__()
        self.eval_mode = eval_mode

    @property
    def eval_mode(self) -> str:
        return self._eval_mode

    @eval_mode.setter
    def eval_mode(self, mode: str) -> None:
        if mode not in EVAL_MODES:
            raise ValueError(f"unknown spike eval_mode {mode!r}; expected one of {EVAL_MODES}")
        self._eval_mode = mode

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        probability = x.clamp(0.0, 1.0)
        if self.training or self.eval_mode == "sample":
            out = StochasticSpike.apply(probability, uniforms)
        else:
            out = probability
        if mask is not None:
            out = out * mask
        return out

    def extra_repr(self) -> str:
        return f"eval_mode={self.eval_mode!r}"
