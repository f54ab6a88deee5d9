"""ClampFuse: where a P-SpikeSSM block meets the real-valued residual stream."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.channel_affine import ChannelAffine
from pspikessm.models.dropout import make_dropout
from pspikessm.models.norms import apply_norm, make_norm
from pspikessm.models.settings import BlockSettings


class ClampFuse(nn.Module):
    """In: the residual stream → each branch's drive. Out: mixed spikes → the residual stream.

    In (:meth:`drives`): branch ``j``'s drive is ``q_j = a_j ⊙ x + b_j``; in pre-norm models
    branch 1's drive is normalised (branch 2's never is, as in the official code). Each
    branch's input neuron clamps its drive to [0, 1] and samples the input spikes.
    Out (:meth:`forward`): ``x + drop(m)``, or ``m`` without the residual (no dropout then,
    as the official code), then the norm in post-norm models.

    Args:
        d_model: width H.
        settings: the block's settings; read: ``second_branch`` (how many drives), ``norm``,
            ``prenorm``, ``residual``, ``dropout``, ``tie_dropout``, ``drive_init`` and
            ``affine_lr``.

    Parameters: ``affines.{j}`` (one ChannelAffine per branch), ``pre_norm`` or ``post_norm``
    (the other is an identity).
    """

    def __init__(self, d_model: int, settings: BlockSettings) -> None:
        super().__init__()
        self.residual = settings.residual
        self.affines = nn.ModuleList(
            ChannelAffine(d_model, *settings.drive_init, lr=settings.affine_lr)
            for _ in range(settings.branches)
        )
        norm = make_norm(settings.norm, d_model)
        self.pre_norm = norm if settings.prenorm else nn.Identity()
        self.post_norm = nn.Identity() if settings.prenorm else norm
        self.dropout = make_dropout(settings.dropout, settings.tie_dropout)

    def drives(self, x: torch.Tensor, extent: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``x`` (B, H, L) → one drive (B, H, L) per branch; ``extent`` (1, 1, L) or None:
        the steps a BatchNorm's statistics cover (:func:`~pspikessm.models.norms.apply_norm`)."""
        drives = [affine(x) for affine in self.affines]
        drives[0] = apply_norm(self.pre_norm, drives[0], extent)
        return drives

    def forward(
        self, x: torch.Tensor, mixed: torch.Tensor, extent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Residual stream ``x`` and the block's mixed output (both (B, H, L)) → new stream."""
        out = x + self.dropout(mixed) if self.residual else mixed
        return apply_norm(self.post_norm, out, extent)

    @property
    def norm(self) -> nn.Module:
        """The block's one normalisation, wherever it sits."""
        return self.post_norm if isinstance(self.pre_norm, nn.Identity) else self.pre_norm
