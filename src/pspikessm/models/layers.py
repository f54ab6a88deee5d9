"""Small layers on (B, H, L) tensors that a block is made of: the SpikeMixer, the per-neuron
affine map and dropout with a mask per step or per (example, neuron)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


class SpikeMixer(nn.Module):
    """``m = GELU(W s + c)`` over the neuron dimension of (B, H_in, L) spikes.

    With binary ``s``, ``W s`` sums selected columns of W: accumulates, not multiplies.

    Args:
        d_in, d_out: neurons in and out (``d_out`` defaults to ``d_in``).
        activation: ``gelu`` (the paper's) or ``relu`` (its ablation): ``block.mixer``.

    Inputs: ``s`` (B, H_in, L). Outputs: ``m`` (B, H_out, L).
    """

    def __init__(self, d_in: int, d_out: int | None = None, activation: str = "gelu") -> None:
        super().__init__()
        self.activation = activation
        self.linear = nn.Linear(d_in, d_out or d_in)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        # One batched GEMM on the (B, H, L) layout with the bias fused: torch.matmul would
        # transpose the spikes to (B L, H) and back.
        weight = self.linear.weight.expand(spikes.shape[0], -1, -1)  # (B H_out H_in)
        mixed = torch.baddbmm(self.linear.bias.unsqueeze(-1), weight, spikes)  # (B H_out L)
        return ACTIVATIONS[self.activation](mixed)


class ChannelAffine(nn.Module):
    """``a ⊙ x + b`` with one (a, b) pair per neuron, starting as the identity (a = 1, b = 0).

    Args:
        d_model: neurons H.

    Inputs: ``x`` (B, H, L). Outputs: (B, H, L).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(d_model))
        self.shift = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return AffineFunction.apply(x, self.scale, self.shift)


def channel_affine_reference(
    x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor
) -> torch.Tensor:
    """``scale ⊙ x + shift`` on (B, H, L) with (H,) parameters, by plain autograd."""
    return torch.addcmul(shift.unsqueeze(-1), scale.unsqueeze(-1), x)


class AffineFunction(torch.autograd.Function):
    """:func:`channel_affine_reference` with a backward of four ops, not six: autograd's
    ``addcmul`` backward also multiplies both gradients by its ``value`` (1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x if ctx.needs_input_grad[1] else None, scale)
        return torch.addcmul(shift.unsqueeze(-1), scale.unsqueeze(-1), x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, scale = ctx.saved_tensors
        grad_x = grad * scale.unsqueeze(-1) if ctx.needs_input_grad[0] else None
        grad_scale = (grad * x).sum((0, 2)) if ctx.needs_input_grad[1] else None
        grad_shift = grad.sum((0, 2)) if ctx.needs_input_grad[2] else None
        return grad_x, grad_scale, grad_shift


def make_dropout(rate: float, tied: bool) -> nn.Module:
    """Dropout on (B, H, L): ``nn.Dropout`` (a fresh mask at every step) or, ``tied``,
    ``nn.Dropout1d``: one mask per (example, neuron), the same at every time step (the official
    ``tie_dropout``, S4's ``DropoutNd``); identity when ``rate`` is 0."""
    if rate == 0.0:
        return nn.Identity()
    return nn.Dropout1d(rate) if tied else nn.Dropout(rate)
