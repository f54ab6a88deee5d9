"""Where spikes come from: finding spike-producing modules and counting their spikes exactly.

A module is a *spike source* when its class carries ``emits_spikes = True``
(:func:`pspikessm.models.neurons.is_spike_source`: SpikeSampler and the baselines' binary and
LIF neurons do; other neuron kinds opt in the same way) and keeps the sampler's calling
convention, which the monitors rely on:

- ``forward(x, mask=None, ...)``: ``mask`` (B, 1, L) with 1 at valid steps (second positional
  argument or keyword), or None when every step is valid;
- the output is (B, H, L): spikes in {0, 1}, or firing probabilities in [0, 1] (a sampler in
  ``eval_mode="expected"``), already zero at padded steps.

A non-spiking baseline simply has no spike sources.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import Metric

from pspikessm.models.neurons import spike_emitters


def spike_sources(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every spike source in ``model`` with a short display name, in registration order.

    Names: ``layer{i}/input`` and ``layer{i}/output`` for the input and output spikes of block
    ``i``'s first branch (``blocks.{i}.branches.0.input_spikes``, ``...output_spikes``),
    ``layer{i}/input_b`` and ``layer{i}/output_b`` for its second branch; any other source
    keeps its qualified module name with dots turned into underscores.
    """
    found = spike_emitters(model)  # (qualified name, module)
    names = [source_name(name) for name, _ in found]
    if len(set(names)) != len(names):  # two backbones (e.g. retrieval) share block names
        names = [name.replace(".", "_") for name, _ in found]
    return [(name, module) for name, (_, module) in zip(names, found, strict=True)]


#: The one naming rule of spike observation: block ``i`` (``...blocks.{i}``) is ``layer{i}``; a
#: site inside it (``branches.{j}.input_spikes``, ``.output_spikes``, ``.ssm``: the SSM output,
#: which the block's joint ``blocks.{i}.ssm`` returns per branch) is ``layer{i}/input``,
#: ``/output``, ``/u``, with ``_b`` for branch 1 (``_b{j}`` beyond).
_LAYER_SITE = re.compile(
    r"(?:^|\.)blocks\.(\d+)(?:\.branches\.(\d+)\.(input_spikes|output_spikes|ssm))?$"
)
_SITES = {"input_spikes": "input", "output_spikes": "output", "ssm": "u"}


def source_name(qualified_name: str) -> str:
    """``backbone.blocks.0.branches.1.input_spikes`` → ``layer0/input_b``, ``blocks.2`` →
    ``layer2``, ``blocks.0.branches.0.ssm`` → ``layer0/u``; otherwise dots → ``_``."""
    match = _LAYER_SITE.search(qualified_name)
    if match is None:
        return qualified_name.replace(".", "_") or "model"
    layer, branch, site = match.groups()
    if site is None:
        return f"layer{layer}"
    suffix = "" if branch == "0" else "_b" if branch == "1" else f"_b{branch}"
    return f"layer{layer}/{_SITES[site]}{suffix}"


class ForwardHooks:
    """The one hook manager of the monitors and probes: forward hooks (with keyword arguments)
    added one by one or on every spike source, and removed together."""

    def __init__(self) -> None:
        self._handles: list = []

    def add(self, module: nn.Module, hook: Callable) -> None:
        """``hook(module, args, kwargs, output)`` after every call of ``module``."""
        self._handles.append(module.register_forward_hook(hook, with_kwargs=True))

    def on_spikes(
        self, model: nn.Module, observe: Callable, drives: bool = False
    ) -> list[tuple[str, nn.Module]]:
        """Call ``observe(name, spikes, mask)`` with every spike tensor of ``model``'s spike
        sources (names and shapes: :func:`spike_sources`, :func:`spikes_and_mask`), and with
        ``drives`` ``observe(name, spikes, mask, drive, source)``: the (B, H, L) input the
        source turned into those spikes, and the source module. Returns the sources."""
        sources = spike_sources(model)
        for name, module in sources:

            def hook(module, args, kwargs, output, name=name) -> None:
                spikes, mask = spikes_and_mask(args, kwargs, output)
                if drives:
                    observe(name, spikes, mask, args[0] if args else kwargs["x"], module)
                else:
                    observe(name, spikes, mask)

            self.add(module, hook)
        return sources

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def layer_of(source: str) -> str:
    """The layer a source name belongs to: the part before its last ``/`` (``layer0/input``,
    ``layer0/output_b`` → ``layer0``); a name without ``/`` is its own layer."""
    return source.rpartition("/")[0] or source


def spikes_and_mask(args: tuple, kwargs: dict, output: torch.Tensor):
    """The (B, H, L) output and the (B, 1, L) mask (or None) of one spike-source call."""
    mask = kwargs.get("mask", args[1] if len(args) > 1 else None)
    return output, mask


def spike_populations(spikes: torch.Tensor, signed: bool) -> torch.Tensor:
    """Signed spikes (B, H, L) in {-1, 0, 1} as their two populations (B, 2H, L): the ON
    neurons (the +1 spikes) then the OFF neurons (the -1 spikes), each in {0, 1}; unsigned
    spikes unchanged. Every spike of either sign counts, in rates and in energy."""
    if not signed:
        return spikes
    return torch.cat([spikes.clamp_min(0.0), (-spikes).clamp_min(0.0)], dim=1)


class SpikeCounts(Metric):
    """Per-neuron spike counts and the number of valid (example, step) positions.

    States (summed across processes, so rates are exact under DDP):
    ``spikes`` (H,) spikes of each neuron over all valid positions; ``positions`` () number of
    valid (example, time step) positions seen.

    Inputs of :meth:`update`: ``spikes`` (B, H, L) in [0, 1] (signed spikes: first split
    into their ON and OFF populations, :func:`spike_populations`); ``mask`` (B, 1, L) or None.
    """

    full_state_update = False

    def __init__(self, num_neurons: int) -> None:
        super().__init__()
        self.add_state("spikes", torch.zeros(num_neurons, dtype=torch.float64), "sum")
        self.add_state("positions", torch.zeros((), dtype=torch.float64), "sum")

    def update(self, spikes: torch.Tensor, mask: torch.Tensor | None) -> None:
        spikes = spikes.detach()
        if mask is None:
            self.positions += spikes.shape[0] * spikes.shape[-1]
        else:
            mask = mask.detach().to(spikes.dtype)
            spikes = spikes * mask  # padding never counts, whatever the source did there
            self.positions += mask.sum(dtype=torch.float64) * (spikes.shape[0] / mask.shape[0])
        self.spikes += spikes.sum(dim=(0, 2), dtype=torch.float64)  # (H)

    def compute(self) -> dict[str, torch.Tensor]:
        """``rate`` (mean over neurons and positions), ``silent`` (fraction of neurons that
        never fired), ``neuron_rates`` (H,), and the raw ``spikes`` total and ``neuron_steps``."""
        positions = self.positions.clamp_min(1.0)
        return {
            "rate": self.spikes.sum() / (positions * self.spikes.numel()),
            "silent": (self.spikes == 0).double().mean(),
            "neuron_rates": self.spikes / positions,
            "spikes": self.spikes.sum(),
            "neuron_steps": self.positions * self.spikes.numel(),
        }
