"""Per-neuron affine map ``a ⊙ x + b`` on (B, H, L) tensors."""

from __future__ import annotations

import torch
from torch import nn


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
        return torch.addcmul(self.shift.unsqueeze(-1), self.scale.unsqueeze(-1), x)
