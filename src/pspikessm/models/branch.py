"""SpikeBranch: input spikes → SSM neurons → output spikes, one branch of a block."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.channel_affine import ChannelAffine
from pspikessm.models.dropout import make_dropout
from pspikessm.models.neurons import build_neuron, neuron_step
from pspikessm.models.settings import BlockSettings
from pspikessm.models.ssm_conv import SSMConvolution


class SpikeBranch(nn.Module):
    """One branch of a P-SpikeSSM block, as the official code computes it:

    1. ``s_in = neuron(q)``: input spikes from the drive ``q`` (:class:`ClampFuse`);
    2. ``u = K̄ * s_in + D s_in`` (:class:`SSMConvolution`), then dropout (untied);
    3. ``p = a_out ⊙ drop(GELU(u)) + b_out`` (tied dropout; branch 2 has no output affine);
    4. ``s_out = neuron(p)``: output spikes.

    Args:
        d_model: width H.
        settings: the block's settings; read: ``neuron``, ``neuron_args``, ``dropout``,
            ``tie_dropout``, ``output_init``, ``affine_lr``, ``mask_output_padding``, and what
            :class:`SSMConvolution` reads.
        output_affine: apply ``a_out ⊙ · + b_out`` before the output neuron.

    Inputs: ``drive`` (B, H, L); ``mask`` (B, 1, L) with 1 at valid steps, or None;
    ``uniforms_in``, ``uniforms_out``: (B, H, L) uniforms for the two neurons, or None (they
    draw their own). Outputs: output spikes (B, H, L). :meth:`step` is the same computation
    one time step at a time.
    """

    def __init__(self, d_model: int, settings: BlockSettings, output_affine: bool = True) -> None:
        super().__init__()
        self.input_spikes = build_neuron(settings.neuron, settings.neuron_args)
        self.ssm = SSMConvolution(d_model, settings)
        self.dropout = make_dropout(settings.dropout, tied=False)
        self.activation_dropout = make_dropout(settings.dropout, tied=settings.tie_dropout)
        self.output_affine = (
            ChannelAffine(d_model, *settings.output_init, lr=settings.affine_lr)
            if output_affine
            else nn.Identity()
        )
        self.output_spikes = build_neuron(settings.neuron, settings.neuron_args)
        self.mask_outputs = settings.mask_output_padding

    def forward(
        self,
        drive: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms_in: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        spikes_in = self.input_spikes(drive, mask, uniforms_in)  # (B H L)
        return self.output(self.ssm(spikes_in), mask, uniforms_out)

    def output(
        self,
        membrane: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Steps 2 (the dropout) to 4 from the SSM's output ``membrane`` (B, H, L): the block
        runs its branches' SSMs as one convolution (``ssm_conv.joint_convolution``)."""
        membrane = self.dropout(membrane)  # (B H L)
        drive_out = self.output_affine(self.activation_dropout(F.gelu(membrane)))
        mask_out = mask if self.mask_outputs else None
        return self.output_spikes(drive_out, mask_out, uniforms_out)  # (B H L)

    def initial_state(self, batch: int) -> dict[str, Any]:
        """Step mode: the state at t = 0 (the SSM recurrence; neurons start at rest)."""
        return {"ssm": self.ssm.initial_state(batch)}

    def step(
        self,
        drive: torch.Tensor,
        state: dict[str, Any],
        mask: torch.Tensor | None = None,
        uniforms_in: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`forward` at one step: ``drive`` (B, H, 1) → (B, H, 1); updates ``state``."""
        spikes_in = neuron_step(self.input_spikes, drive, state, "input", mask, uniforms_in)
        membrane, state["ssm"] = self.ssm.step(spikes_in, state["ssm"])
        membrane = self.dropout(membrane)
        drive_out = self.output_affine(self.activation_dropout(F.gelu(membrane)))
        mask_out = mask if self.mask_outputs else None
        return neuron_step(self.output_spikes, drive_out, state, "output", mask_out, uniforms_out)
