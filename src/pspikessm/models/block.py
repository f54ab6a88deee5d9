"""One P-SpikeSSM layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.channel_affine import ChannelAffine
from pspikessm.models.clamp_fuse import ClampFuse
from pspikessm.models.spike_mixer import SpikeMixer
from pspikessm.models.spike_sampler import SpikeSampler
from pspikessm.models.ssm_conv import SSMConvolution


class PSpikeSSMBlock(nn.Module):
    """ClampFuse in → SSM neurons → SpikeSampler → SpikeMixer → ClampFuse out.

    1. ``s_in = SpikeSampler(clamp(norm(a_in ⊙ x + b_in)))`` (:class:`ClampFuse`);
    2. ``u = K̄ * s_in + D s_in`` (:class:`SSMConvolution`);
    3. ``s_out = SpikeSampler(clamp(a_out ⊙ dropout(GELU(u)) + b_out))``;
    4. ``m = GELU(W s_out + c)`` (:class:`SpikeMixer`), ``x ← x + dropout(m)`` (+ post-norm).

    Inputs: ``x`` (B, H, L) residual stream; ``mask`` (B, 1, L) with 1 at valid steps, or
    None. Outputs: (B, H, L).

    The spike tensors pass through ``self.fuse.input_spikes`` and ``self.output_spikes``
    (both :class:`SpikeSampler`); forward hooks there observe them.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 64,
        kernel: str = "diag",
        init: str = "legs",
        bidirectional: bool = False,
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        residual: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        dt_lr: float | None = None,
        eval_mode: str = "sample",
    ) -> None:
        super().__init__()
        self.fuse = ClampFuse(d_model, norm, prenorm, dropout, residual, eval_mode)
        self.ssm = SSMConvolution(
            d_model,
            d_state,
            kernel=kernel,
            bidirectional=bidirectional,
            init=init,
            dt_min=dt_min,
            dt_max=dt_max,
            ssm_lr=ssm_lr,
            dt_lr=dt_lr,
        )
        self.dropout = nn.Dropout(dropout)
        self.output_affine = ChannelAffine(d_model)
        self.output_spikes = SpikeSampler(eval_mode)
        self.mixer = SpikeMixer(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        spikes_in = self.fuse.spikes_in(x, mask)  # (B H L)
        membrane = self.ssm(spikes_in)  # (B H L)
        drive = self.output_affine(self.dropout(F.gelu(membrane)))
        spikes_out = self.output_spikes(drive, mask)  # (B H L)
        return self.fuse.fuse(x, self.mixer(spikes_out))
