"""One P-SpikeSSM layer, and the switches that turn it into the baselines and ablations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.channel_affine import ChannelAffine
from pspikessm.models.clamp_fuse import ClampFuse
from pspikessm.models.neurons import make_neuron, neuron_step
from pspikessm.models.spike_mixer import SpikeMixer
from pspikessm.models.spike_sampler import SpikeSampler
from pspikessm.models.ssm_conv import SSMConvolution

MIXERS = ("gelu", "relu", "none")
BRANCH_SUFFIX = "_b"  # attribute suffix of the optional second SSM branch


class PSpikeSSMBlock(nn.Module):
    """ClampFuse in → SSM neurons → SpikeSampler → SpikeMixer → ClampFuse out.

    1. ``s_in = SpikeSampler(clamp(norm(a_in ⊙ x + b_in)))`` (:class:`ClampFuse`);
    2. ``u = K̄ * s_in + D s_in`` (:class:`SSMConvolution`);
    3. ``s_out = SpikeSampler(clamp(a_out ⊙ dropout(GELU(u)) + b_out))``;
    4. ``m = GELU(W s_out + c)`` (:class:`SpikeMixer`), ``x ← x + dropout(m)`` (+ post-norm).

    Baseline and ablation switches (everything else is shared):
        neuron: what draws the spikes at both sites (``pspike``, ``gelu`` = non-spiking,
            ``binary``, ``lif``; see :mod:`pspikessm.models.neurons`); ``neuron_args`` its
            settings.
        mixer: ``gelu`` (paper), ``relu`` or ``none`` (no SpikeMixer: ``m = s_out``).
        second_branch: a second independent SSM + neuron on the same input spikes, whose
            output is concatenated with the first and mixed 2H → H (the official configs').
        kernel_args: kernel-specific options (``dplr``: ``shared``).

    Inputs: ``x`` (B, H, L) residual stream; ``mask`` (B, 1, L) with 1 at valid steps, or
    None; ``uniforms``: optional mapping from a spike sampler's name inside the block
    (:meth:`sampler_names`) to (B, H, L) uniforms that fix its draw. Outputs: (B, H, L).

    The spike tensors pass through ``self.fuse.input_spikes`` and ``self.output_spikes`` (and
    ``self.output_spikes_b``); forward hooks there observe them.
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
        kernel_args: dict[str, Any] | None = None,
        neuron: str = "pspike",
        neuron_args: dict[str, Any] | None = None,
        mixer: str = "gelu",
        second_branch: bool = False,
    ) -> None:
        super().__init__()
        if mixer not in MIXERS:
            raise ValueError(f"unknown mixer {mixer!r}; expected one of {MIXERS}")
        if mixer == "none" and second_branch:
            raise ValueError("second_branch needs a mixer (2H → H); got mixer='none'")
        self.second_branch = second_branch
        self.fuse = ClampFuse(
            d_model, norm, prenorm, dropout, residual, eval_mode, neuron, neuron_args
        )
        branches = ("", BRANCH_SUFFIX) if second_branch else ("",)
        for suffix in branches:
            ssm = SSMConvolution(
                d_model,
                d_state,
                kernel=kernel,
                bidirectional=bidirectional,
                init=init,
                dt_min=dt_min,
                dt_max=dt_max,
                ssm_lr=ssm_lr,
                dt_lr=dt_lr,
                **(kernel_args or {}),
            )
            self.add_module("ssm" + suffix, ssm)
            self.add_module("output_affine" + suffix, ChannelAffine(d_model))
            self.add_module(
                "output_spikes" + suffix, make_neuron(neuron, eval_mode, **(neuron_args or {}))
            )
        self._branches = branches
        self.dropout = nn.Dropout(dropout)
        width = d_model * len(branches)
        self.mixer = nn.Identity() if mixer == "none" else SpikeMixer(width, d_model, mixer)

    def sampler_names(self) -> list[str]:
        """Names (inside the block) of the stochastic samplers that take ``uniforms``."""
        return [name for name, m in self.named_modules() if isinstance(m, SpikeSampler)]

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        return self._run(x, mask, uniforms, state=None)

    def initial_state(self, batch: int) -> dict[str, Any]:
        """Step mode: the block's state at t = 0 (SSM recurrences and zero states)."""
        return {"ssm" + s: getattr(self, "ssm" + s).initial_state(batch) for s in self._branches}

    def step(
        self,
        x: torch.Tensor,
        state: dict[str, Any],
        mask: torch.Tensor | None = None,
        uniforms: Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """One time step: ``x`` (B, H, 1), ``mask`` (B, 1, 1), ``uniforms`` (B, H, 1) each.

        Updates ``state`` in place and returns (B, H, 1): :meth:`forward` at that step.
        Needs evaluation mode (batch statistics and dropout act across time steps).
        """
        if self.training:
            raise RuntimeError("step mode runs in evaluation mode; call model.eval() first")
        return self._run(x, mask, uniforms, state)

    def _neuron(self, name, drive, mask, uniforms, state) -> torch.Tensor:
        """Apply the neuron ``name``: whole sequence (``state`` None) or one step."""
        neuron = self.get_submodule(name)
        u = uniforms.get(name) if uniforms is not None else None
        if state is None:
            return neuron(drive, mask, u)
        out, state[name] = neuron_step(neuron, drive, state.get(name), mask, u)
        return out

    def _run(self, x, mask, uniforms, state) -> torch.Tensor:
        spikes_in = self._neuron("fuse.input_spikes", self.fuse.drive_in(x), mask, uniforms, state)
        outputs = []
        for suffix in self._branches:
            ssm = getattr(self, "ssm" + suffix)
            if state is None:
                membrane = ssm(spikes_in)  # (B H L)
            else:
                membrane, state["ssm" + suffix] = ssm.step(spikes_in, state["ssm" + suffix])
            drive = getattr(self, "output_affine" + suffix)(self.dropout(F.gelu(membrane)))
            outputs.append(self._neuron("output_spikes" + suffix, drive, mask, uniforms, state))
        spikes_out = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0]  # (B H' L)
        return self.fuse.fuse(x, self.mixer(spikes_out))
