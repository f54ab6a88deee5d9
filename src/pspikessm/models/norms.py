"""Normalisation over the channel dimension of (B, H, L) tensors, and BatchNorm's statistics
restricted to the steps a batch really has (``data.length_buckets`` pads beyond them)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.settings import Norm


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over H for inputs laid out as (B, H, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.transpose(1, 2)


def make_norm(kind: Norm, d_model: int) -> nn.Module:
    """``batch`` (BatchNorm1d), ``layer`` (LayerNorm over H) or ``none``, all on (B, H, L)."""
    if kind == "batch":
        return nn.BatchNorm1d(d_model)
    return ChannelLayerNorm(d_model) if kind == "layer" else nn.Identity()


def batch_extent(lengths: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """(1, 1, L): 1 at the steps ``t < max(lengths)`` (the batch before any bucket padding,
    :func:`~pspikessm.data.collate.bucket_length`), or None where that is every step.

    BatchNorm's training statistics cover these steps only, so padding a batch beyond its
    longest sequence changes no result. Eager on CPU the check is free and the plain
    BatchNorm runs when nothing is padded; on a GPU or under ``torch.compile`` the check would
    wait for the device (or break the graph), so the extent is always applied there.
    """
    if lengths is None:
        return None
    if not (lengths.is_cuda or torch.compiler.is_compiling()) and int(lengths.max()) >= length:
        return None
    steps = torch.arange(length, device=lengths.device)
    return (steps < lengths.max()).view(1, 1, -1)


def apply_norm(norm: nn.Module, x: torch.Tensor, extent: torch.Tensor | None) -> torch.Tensor:
    """``norm(x)`` for ``x`` (B, H, L), with a training BatchNorm's statistics (and running
    statistics) taken over the steps of ``extent`` (1, 1, L) only (:func:`batch_extent`)."""
    if extent is None or not (isinstance(norm, nn.BatchNorm1d) and norm.training):
        return norm(x)
    weights = extent.to(x.dtype)
    count = weights.sum() * x.shape[0]
    mean = (x * weights).sum(dim=(0, 2)) / count  # (H)
    var = ((x - mean.view(1, -1, 1)).square() * weights).sum(dim=(0, 2)) / count  # (H)
    if norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        momentum = norm.momentum
        if momentum is None:  # cumulative average, as BatchNorm1d's
            momentum = 1.0 / norm.num_batches_tracked
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            norm.running_mean.lerp_(mean.detach(), momentum)
            norm.running_var.lerp_(unbiased.detach(), momentum)
    scale = torch.rsqrt(var + norm.eps)  # (H)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -mean * scale if norm.bias is None else norm.bias - mean * scale
    return torch.addcmul(shift.view(1, -1, 1), scale.view(1, -1, 1), x)
