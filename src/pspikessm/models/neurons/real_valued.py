"""The non-spiking 'neuron' of the S4/S4D baselines: the drive passes on unchanged."""

from __future__ import annotations

import torch
from torch import nn


class RealValued(nn.Module):
    """Passes its input on, zeroed at padding: the block without spikes (S4D, or S4 with DPLR).

    After the SSM the drive is already ``a ⊙ GELU(u) + b``; at the entry it is the
    (normalised) residual stream.

    Inputs: ``x`` (B, H, L); optional ``mask`` (B, 1, L); ``uniforms`` ignored.
    Outputs: ``x``'s shape.
    """

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return x if mask is None else x * mask
