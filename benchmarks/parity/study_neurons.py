"""Deterministic stand-ins for the spiking neuron, to decompose what spiking costs.

Used by ``python -m benchmarks.parity.learning`` (docs/ablations.md, "Keep every spiking
neuron alive") as ``block.neuron`` import paths, or at one site only with the variant items
``site.input=...`` / ``site.output=...`` (:func:`benchmarks.parity.learning_runs.swap_sites`).
None of them spikes: each keeps one property of ``clamp(x, 0, 1)`` and drops the sampling.

- :class:`Clamp`: ``clamp(x, 0, 1)``, the firing probability itself (bounded, rectified);
- :class:`HardTanh`: ``clamp(x, -1, 1)``, the expectation of signed spikes (bounded, signed);
- :class:`Relu`: ``max(x, 0)`` (rectified, unbounded).

They declare ``emits_spikes`` so that the firing-rate monitor reports their mean output as a
"rate" and a neuron that is zero everywhere as silent, and a ``firing_window`` where their
gradient passes, as the spiking neurons do.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pspikessm.models.neurons.normalized import NormalizedSpikeSampler
from pspikessm.models.neurons.pspike import StochasticSpike


class _Deterministic(nn.Module):
    emits_spikes = True  # observed by the monitors: "rate" is the mean output
    low, high = 0.0, 1.0

    def __init__(self) -> None:
        super().__init__()
        self.firing_window = (self.low, self.high)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` (B, H, L) → the clipped value (B, H, L), zero where ``mask`` (B, 1, L) is."""
        out = x.clamp(self.low, None if math.isinf(self.high) else self.high)
        return out if mask is None else out * mask


class Clamp(_Deterministic):
    """``clamp(x, 0, 1)``: P-SpikeSSM's firing probability, with no sampling."""


class HardTanh(_Deterministic):
    """``clamp(x, -1, 1)``: the expectation of signed (ON/OFF) spikes, with no sampling."""

    signed = True  # counted as ON and OFF populations, as the signed sampler
    low = -1.0


class Relu(_Deterministic):
    """``max(x, 0)``: rectified like the firing probability, without its upper bound."""

    high = math.inf


class NormalizedSampler(NormalizedSpikeSampler):
    """:class:`~pspikessm.models.neurons.normalized.NormalizedSpikeSampler` (the drive
    standardised per neuron before the clamp) with the study's extra switches.

    ``signed``: ON/OFF spikes of ``clamp(scale z + offset, -1, 1)``, as
    ``SpikeSampler(signed=True)``; ``samples``: the mean of that many independent draws per
    step (a population of ``samples`` neurons per channel: the sampling noise's variance
    divided by ``samples``); ``sample=False``: the firing probability itself, in training and
    evaluation (deterministic, no spikes).

    (The rows ``norm*`` of docs/ablations.md ran an earlier standalone copy of this class with
    the same normalisation and a biased running variance.)
    """

    def __init__(
        self,
        num_neurons: int,
        scale: float = 1.0,
        offset: float = -0.25,
        signed: bool = False,
        samples: int = 1,
        sample: bool = True,
    ) -> None:
        super().__init__(num_neurons, scale=scale, offset=offset)
        self.signed, self.samples, self.sample = signed, samples, sample
        self.firing_window = (-1.0, 1.0) if signed else (0.0, 1.0)

    def fire(
        self, drive: torch.Tensor, mask: torch.Tensor | None, uniforms: torch.Tensor | None
    ) -> torch.Tensor:
        """The normalised ``drive`` (B, H, L) → spikes, their mean over ``samples`` draws, or
        the probabilities."""
        if self.sample and (self.training or self.sample_in_eval):
            draws = [
                StochasticSpike.apply(drive, uniforms if k == 0 else None, mask, self.signed)
                for k in range(self.samples)
            ]
            return draws[0] if self.samples == 1 else torch.stack(draws).mean(0)
        probability = drive.clamp(*self.firing_window)
        return probability if mask is None else probability * mask
