"""Which neuron turns a block's real-valued drive into its output: the baselines' switch.

``neuron`` (a block / backbone option) picks one kind for both sites of a block (the input
spikes at ClampFuse's entry and the output spikes after the SSM):

- ``pspike``: :class:`SpikeSampler`, Bernoulli spikes of ``clamp(x, 0, 1)`` (P-SpikeSSM);
- ``gelu``: :class:`RealValued`, no spikes (non-spiking S4D/S4: the drive after the SSM is
  already ``a ⊙ GELU(u) + b``, the entry passes the normalised stream through);
- ``binary``: :class:`HeavisideSpike`, ``1[x > 1/2]`` with a straight-through gradient
  (Binary S4D);
- ``lif``: :class:`LIFNeuron`, leaky integrate-and-fire iterated over time (LIF-SSM).

Every spike-producing class sets ``emits_spikes = True``; that is how
:func:`pspikessm.models.spike_samplers` (and the callbacks built on it) find them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pspikessm.models.binary_neuron import HeavisideSpike
from pspikessm.models.lif_neuron import LIFNeuron
from pspikessm.models.spike_sampler import SpikeSampler

NEURONS = ("pspike", "gelu", "binary", "lif")


class RealValued(nn.Module):
    """The non-spiking 'neuron': passes its input on, zeroed at padding.

    Inputs: ``x`` (B, H, L); optional ``mask``; ``uniforms`` ignored. Outputs: ``x``'s shape.
    """

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return x if mask is None else x * mask


def make_neuron(kind: str, eval_mode: str = "sample", **neuron_args: Any) -> nn.Module:
    """A neuron of ``kind``; ``neuron_args`` go to :class:`LIFNeuron` / :class:`HeavisideSpike`."""
    if kind not in NEURONS:
        raise ValueError(f"unknown neuron {kind!r}; valid neurons: {list(NEURONS)}")
    if kind in ("pspike", "gelu") and neuron_args:
        raise ValueError(f"neuron {kind!r} takes no neuron_args, got {sorted(neuron_args)}")
    if kind == "pspike":
        return SpikeSampler(eval_mode)
    if kind == "gelu":
        return RealValued()
    cls = HeavisideSpike if kind == "binary" else LIFNeuron
    try:
        return cls(**neuron_args)
    except TypeError as error:
        raise ValueError(f"bad neuron_args for neuron {kind!r}: {error}") from None


def neuron_step(
    neuron: nn.Module,
    x: torch.Tensor,
    state: dict[str, torch.Tensor] | None,
    mask: torch.Tensor | None = None,
    uniforms: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
    """One time step of any neuron: ``x`` (B, H, 1) → output (B, H, 1) and its next state.

    Only :class:`LIFNeuron` carries state (``{"membrane": (B, H)}``); the others are
    memoryless. The neuron is called as a module, so forward hooks see step mode too.
    """
    if isinstance(neuron, LIFNeuron):
        state = {} if state is None else state
        return neuron(x, mask, None, state), state
    return neuron(x, mask, uniforms), None
