"""Normalisation over the channel dimension of (B, H, L) tensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "layer", "none")


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over H for inputs laid out as (B, H, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.transpose(1, 2)


def make_norm(kind: str, d_model: int) -> nn.Module:
    """``batch`` (BatchNorm1d), ``layer`` (LayerNorm over H) or ``none``, all on (B, H, L)."""
    if kind == "batch":
        return nn.BatchNorm1d(d_model)
    if kind == "layer":
        return ChannelLayerNorm(d_model)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")
