"""SpikeMixer: a dense map across the neurons of a layer, fed by binary spikes."""

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
        activation: ``gelu`` (the paper's) or ``relu`` (its ablation).

    Inputs: ``s`` (B, H_in, L). Outputs: ``m`` (B, H_out, L).
    """

    def __init__(self, d_in: int, d_out: int | None = None, activation: str = "gelu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown mixer activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        self.activation = activation
        self.linear = nn.Linear(d_in, d_out or d_in)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        # One batched GEMM on the (B, H, L) layout with the bias fused: torch.matmul would
        # transpose the spikes to (B L, H) and back.
        weight = self.linear.weight.expand(spikes.shape[0], -1, -1)  # (B H_out H_in)
        mixed = torch.baddbmm(self.linear.bias.unsqueeze(-1), weight, spikes)  # (B H_out L)
        return ACTIVATIONS[self.activation](mixed)
