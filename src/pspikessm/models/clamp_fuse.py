"""ClampFuse: how a P-SpikeSSM block enters and leaves the real-valued residual stream."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.channel_affine import ChannelAffine
from pspikessm.models.neurons import make_neuron
from pspikessm.models.norms import make_norm


class ClampFuse(nn.Module):
    """Entry: residual stream → input spikes. Exit: mixed spikes → residual stream.

    Entry (:meth:`spikes_in`): ``q = a_in ⊙ x + b_in`` → norm (pre-norm models) → clamp to
    [0, 1] → :class:`SpikeSampler` (or the block's other neuron kind). Exit (:meth:`fuse`): ``x + dropout(m)`` (or ``dropout(m)``
    without the residual) → norm (post-norm models).

    Args:
        d_model: width H.
        norm: ``batch``, ``layer`` or ``none``.
        prenorm: normalise at the entry (True) or after the residual sum (False).
        dropout: dropout on the mixed spikes before the residual sum.
        residual: add the block's output to its input.
        eval_mode: evaluation mode of the input :class:`SpikeSampler`.
        neuron: neuron kind of the entry (:data:`pspikessm.models.neurons.NEURONS`).
        neuron_args: settings of that neuron (LIF: beta, threshold, ...).
    """

    def __init__(
        self,
        d_model: int,
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        residual: bool = True,
        eval_mode: str = "sample",
        neuron: str = "pspike",
        neuron_args: dict | None = None,
    ) -> None:
        super().__init__()
        self.prenorm = prenorm
        self.residual = residual
        self.affine = ChannelAffine(d_model)
        self.norm = make_norm(norm, d_model)
        self.input_spikes = make_neuron(neuron, eval_mode, **(neuron_args or {}))
        self.dropout = nn.Dropout(dropout)

    def drive_in(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (B, H, L) real → the entry neuron's input ``q`` (B, H, L)."""
        q = self.affine(x)
        return self.norm(q) if self.prenorm else q

    def spikes_in(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` (B, H, L) real → input spikes (B, H, L); ``mask`` (B, 1, L) zeroes padding;
        ``uniforms`` (B, H, L) fixes the random draw of a stochastic entry neuron."""
        return self.input_spikes(self.drive_in(x), mask, uniforms)

    def fuse(self, x: torch.Tensor, mixed: torch.Tensor) -> torch.Tensor:
        """Residual stream ``x`` and the block's mixed output (both (B, H, L)) → new stream."""
        out = self.dropout(mixed)
        if self.residual:
            out = x + out
        if not self.prenorm:
            out = self.norm(out)
        return out
