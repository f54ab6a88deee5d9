"""Per-neuron affine map ``a ⊙ x + b`` on (B, H, L) tensors."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.optim import tag_optim


class ChannelAffine(nn.Module):
    """``a ⊙ x + b`` with one (a, b) pair per neuron.

    Args:
        d_model: neurons H.
        scale, shift: initial ``a`` and ``b`` (1 and 0: the identity).
        lr: learning rate of ``a`` and ``b`` (an optimiser tag); None: the global rate.

    Inputs: ``x`` (B, H, L). Outputs: (B, H, L).
    """

    def __init__(
        self, d_model: int, scale: float = 1.0, shift: float = 0.0, lr: float | None = None
    ) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.full((d_model,), float(scale)))
        self.shift = nn.Parameter(torch.full((d_model,), float(shift)))
        if lr is not None:
            tag_optim(self.scale, lr=lr)
            tag_optim(self.shift, lr=lr)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift.unsqueeze(-1), self.scale.unsqueeze(-1), x)
