"""Two-document classification (LRA Retrieval): one shared encoder, an MLP on [u, v, u·v, u−v]."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def encode_pair(
    features: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    inputs: torch.Tensor,
    lengths: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode both documents of each pair with the same ``features`` function in one pass.

    Inputs: ``inputs`` (B, 2, L, ...) with ``inputs[:, 0]`` the first documents; ``lengths``
    (B, 2) or None. The two halves are stacked along the batch, first documents then second
    (2B, L, ...), so a batch norm sees both. Outputs: ``u``, ``v`` (B, H) each.
    """
    if inputs.dim() < 3 or inputs.shape[1] != 2:
        raise ValueError(
            f"a two-document model takes inputs (B, 2, L, ...), got {tuple(inputs.shape)}; "
            "set model.backbone.init_args.dual_input=false for single-sequence data"
        )
    batch = inputs.shape[0]
    stacked = inputs.transpose(0, 1).reshape(2 * batch, *inputs.shape[2:])  # (2B L ...)
    stacked_lengths = None if lengths is None else lengths.transpose(0, 1).reshape(2 * batch)
    u, v = features(stacked, stacked_lengths).split(batch)  # (B H) each
    return u, v


class RetrievalHead(nn.Module):
    """MLP with GELU on the matching features ``[u, v, u·v, u−v]`` of two encodings.

    Args:
        d_model: width H of each encoding.
        num_classes: output classes.
        d_hidden: hidden width of the MLP (default H).

    Inputs: ``u``, ``v`` (B, H). Outputs: logits (B, num_classes).
    """

    def __init__(self, d_model: int, num_classes: int, d_hidden: int | None = None) -> None:
        super().__init__()
        d_hidden = d_hidden or d_model
        self.hidden = nn.Linear(4 * d_model, d_hidden)
        self.output = nn.Linear(d_hidden, num_classes)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        matching = torch.cat([u, v, u * v, u - v], dim=-1)  # (B 4H)
        return self.output(F.gelu(self.hidden(matching)))
