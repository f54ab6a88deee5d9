"""One P-SpikeSSM layer: ClampFuse in → spike branches → SpikeMixer → ClampFuse out."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pspikessm.models.branch import SpikeBranch
from pspikessm.models.clamp_fuse import ClampFuse
from pspikessm.models.settings import BlockSettings
from pspikessm.models.spike_mixer import ACTIVATIONS, SpikeMixer
from pspikessm.models.ssm_conv import joint_convolution

#: Per branch, the uniforms of its (input, output) neurons; None lets a neuron draw its own.
Uniforms = list[tuple[torch.Tensor | None, torch.Tensor | None]]


class PSpikeSSMBlock(nn.Module):
    """One P-SpikeSSM layer, as the authors' code computes it.

    1. ``q_j = ClampFuse.drives(x)``: one drive per branch (affine; branch 1 pre-normed);
    2. ``s_j = SpikeBranch_j(q_j)``: input spikes → SSM neurons → output spikes;
    3. ``m = GELU(W [s_1; s_2] + c)`` (:class:`SpikeMixer`, 2H → H with the second branch);
    4. ``x ← ClampFuse(x, m)``: residual sum with tied dropout, post-norm.

    Args:
        d_model: width H.
        settings: :class:`BlockSettings` (default: the paper's block).

    Inputs: ``x`` (B, H, L) residual stream; ``mask`` (B, 1, L) with 1 at valid steps, or
    None; ``uniforms``: optional, per branch the (input, output) uniforms (B, H, L) that fix
    the spikes (:meth:`draw_uniforms`). Outputs: (B, H, L). :meth:`step` runs the same block
    one time step at a time (evaluation mode).
    """

    def __init__(self, d_model: int, settings: BlockSettings | None = None) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        if settings.mixer != "none" and settings.mixer not in ACTIVATIONS:
            raise ValueError(
                f"block.mixer={settings.mixer!r}: expected one of {[*ACTIVATIONS, 'none']}"
            )
        if settings.mixer == "none" and settings.second_branch:
            raise ValueError("block.second_branch needs a mixer (2H → H); got mixer='none'")
        self.share_uniforms = settings.share_uniforms
        self.fuse = ClampFuse(d_model, settings)
        self.branches = nn.ModuleList(
            SpikeBranch(d_model, settings, output_affine=j == 0) for j in range(settings.branches)
        )
        width = d_model * settings.branches
        self.mixer = (
            nn.Identity()
            if settings.mixer == "none"
            else SpikeMixer(width, d_model, settings.mixer)
        )

    def draw_uniforms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Uniforms:
        """Uniforms shaped like ``x`` (float32 at least) for every spike site, shared as
        ``share_uniforms`` says: officially ``u1`` serves branch 1's input spikes and every
        branch's output spikes, ``u2`` branch 2's input spikes (one branch: ``u1`` in, ``u2``
        out); otherwise one tensor per site."""
        dtype = torch.promote_types(x.dtype, torch.float32)

        def uniform() -> torch.Tensor:
            if generator is None:  # rand_like: also under torch.compile's dynamic shapes
                return torch.rand_like(x, dtype=dtype)
            return torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)

        if not self.share_uniforms:
            return [(uniform(), uniform()) for _ in self.branches]
        u1, u2 = uniform(), uniform()
        if len(self.branches) == 1:
            return [(u1, u2)]
        return [(u1, u1), *[(u2, u1) for _ in self.branches[1:]]]

    def _uniforms(self, x: torch.Tensor) -> Uniforms:
        takes_uniforms = getattr(self.branches[0].input_spikes, "takes_uniforms", False)
        # One branch shares nothing (its two sites get two tensors): its neurons draw in
        # place, which costs a third less than comparing with tensors drawn here.
        if self.share_uniforms and takes_uniforms and len(self.branches) > 1:
            return self.draw_uniforms(x)
        return [(None, None) for _ in self.branches]  # each neuron draws its own, in place

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: Uniforms | None = None,
        extent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``extent`` (1, 1, L): the steps BatchNorm statistics cover (``norms.batch_extent``)."""
        uniforms = self._uniforms(x) if uniforms is None else uniforms
        drives = self.fuse.drives(x, extent)  # per branch (B H L)
        branches = list(zip(self.branches, drives, uniforms, strict=True))
        spikes_in = [br.input_spikes(drive, mask, u) for br, drive, (u, _) in branches]
        membranes = joint_convolution([br.ssm for br in self.branches], spikes_in)
        spikes = [
            br.output(u, mask, pair[1])
            for (br, _, pair), u in zip(branches, membranes, strict=True)
        ]
        return self.fuse(x, self.mixer(torch.cat(spikes, dim=1)), extent)  # (B H L)

    def initial_state(self, batch: int) -> list[dict[str, Any]]:
        """Step mode: the block's state at t = 0. Needs evaluation mode (batch statistics and
        dropout act across time steps)."""
        if self.training:
            raise RuntimeError("step mode runs in evaluation mode; call model.eval() first")
        return [branch.initial_state(batch) for branch in self.branches]

    def step(
        self,
        x: torch.Tensor,
        state: list[dict[str, Any]],
        mask: torch.Tensor | None = None,
        uniforms: Uniforms | None = None,
    ) -> torch.Tensor:
        """:meth:`forward` at one step: ``x`` (B, H, 1), ``mask`` (B, 1, 1), uniforms (B, H, 1)
        each → (B, H, 1). Updates ``state`` in place."""
        uniforms = self._uniforms(x) if uniforms is None else uniforms
        drives = self.fuse.drives(x)
        spikes = [
            branch.step(drive, branch_state, mask, *pair)
            for branch, drive, branch_state, pair in zip(
                self.branches, drives, state, uniforms, strict=True
            )
        ]
        return self.fuse(x, self.mixer(torch.cat(spikes, dim=1)))
