"""Dropout on (B, H, L) tensors, with one mask per time step or one per example and neuron."""

from __future__ import annotations

from torch import nn


def make_dropout(rate: float, tied: bool) -> nn.Module:
    """``nn.Dropout`` (a fresh mask at every step) or, ``tied``, ``nn.Dropout1d``: one mask per
    (example, neuron), the same at every time step (the official ``tie_dropout``, S4's
    ``DropoutNd``); identity when ``rate`` is 0."""
    if rate == 0.0:
        return nn.Identity()
    return nn.Dropout1d(rate) if tied else nn.Dropout(rate)
