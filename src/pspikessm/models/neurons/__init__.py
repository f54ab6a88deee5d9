"""Neurons: what turns a block's real-valued drive into its spikes, chosen by name or class path.

``block.neuron`` picks the class for every spike site of a block (each branch's input and
output spikes). Built-in names:

- ``pspike``: :class:`SpikeSampler`, Bernoulli spikes of ``clamp(x, 0, 1)`` (P-SpikeSSM);
- ``real``: :class:`RealValued`, no spikes: the drive passes on real-valued (the non-spiking
  S4D/S4 baseline; ``gelu``, its old name, is deprecated);
- ``binary``: :class:`HeavisideSpike`, ``1[x > 1/2]``, straight-through (Binary S4D);
- ``lif``: :class:`LIFNeuron`, integrate-and-fire with a decaying membrane, iterated over time (LIF-SSM);
- ``normalized_pspike``: :class:`NormalizedSpikeSampler`, P-SpikeSSM spikes of the drive
  standardised per neuron, so that no neuron falls silent for good (``configs/model/live_neurons.yaml``).

Any other value is an import path (``mypackage.neurons.MyNeuron``); arguments go with the
class as ``{name: lif, init_args: {beta: 0.9}}``. A neuron is an ``nn.Module`` built
from its ``init_args`` (and the site's width H as ``num_neurons`` when its ``__init__`` takes
that argument: per-neuron state), whose ``forward(drive, mask=None,
uniforms=None)`` maps (B, H, L) → (B, H, L), zero where ``mask`` (B, 1, L) is 0. A neuron
whose outputs are spikes sets the class attribute ``emits_spikes = True``: the firing-rate
monitor and the energy estimate find it by that. Optional: ``takes_uniforms = True`` if it
draws ``1[z < p]`` from given uniforms ``z`` (the block then shares them as the official code
does), ``sample_in_eval`` if it can return probabilities in evaluation
(``model.eval_mode: expected``), and ``step(drive, state, mask) -> (out, state)`` if it
carries state from one time step to the next (streaming; ``state`` is None at rest).
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import torch
from torch import nn

from pspikessm.models.settings import ClassChoice, build_choice, resolve_class

NEURONS = {
    "pspike": "pspikessm.models.neurons.pspike.SpikeSampler",
    "real": "pspikessm.models.neurons.real_valued.RealValued",
    "binary": "pspikessm.models.neurons.binary.HeavisideSpike",
    "lif": "pspikessm.models.neurons.lif.LIFNeuron",
    "normalized_pspike": "pspikessm.models.neurons.normalized.NormalizedSpikeSampler",
}


def build_neuron(choice: ClassChoice, num_neurons: int | None = None) -> nn.Module:
    """The neuron ``choice`` names (built-in name, import path, or ``{name, init_args}``),
    given ``num_neurons`` (the site's width H) when its class takes that argument."""
    if num_neurons is not None:
        name = choice if isinstance(choice, str) else choice.get("name", "")
        cls = resolve_class(name, NEURONS, "block.neuron") if isinstance(name, str) else None
        if cls is not None and "num_neurons" in inspect.signature(cls).parameters:
            init_args = {} if isinstance(choice, str) else dict(choice.get("init_args") or {})
            choice = {"name": name, "init_args": {**init_args, "num_neurons": num_neurons}}
    return build_choice(choice, NEURONS, "block.neuron")


def neuron_step(
    neuron: nn.Module,
    drive: torch.Tensor,
    state: dict[str, Any],
    key: str,
    mask: torch.Tensor | None = None,
    uniforms: torch.Tensor | None = None,
) -> torch.Tensor:
    """One time step of ``neuron``: ``drive`` (B, H, 1) → (B, H, 1).

    A neuron with a ``step`` method carries its state in ``state[key]``; the others are
    memoryless and run their ``forward`` on the one step.
    """
    if hasattr(neuron, "step"):
        out, state[key] = neuron.step(drive, state.get(key), mask)
        return out
    return neuron(drive, mask, uniforms)


def is_spike_source(module: nn.Module) -> bool:
    """True when ``module``'s outputs are spikes: its class sets ``emits_spikes = True``."""
    return bool(getattr(module, "emits_spikes", False))


def spike_emitters(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every spike source in ``model`` (:func:`is_spike_source`: samplers, binary and LIF
    neurons, any class that opts in) with its qualified name, in forward order.

    Forward hooks on them observe every spike tensor; a non-spiking model has none.
    """
    return [(name, m) for name, m in model.named_modules() if is_spike_source(m)]


def spike_samplers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Deprecated for one release: :func:`spike_emitters` (it returns every spike source)."""
    warnings.warn(
        "spike_samplers() is deprecated and goes in the next release: use spike_emitters(), "
        "the same list (every spike source, not only samplers)",
        DeprecationWarning,
        stacklevel=2,
    )
    return spike_emitters(model)
