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


class NormalizedSampler(nn.Module):
    """Spikes drawn from the drive standardised per neuron right before the clamp: a firing
    window that follows the drive.

    ``z = (x - mean) / std`` per neuron (channel), the statistics over the batch's valid steps
    in training and their running averages (momentum 0.1) in evaluation; then
    ``Bernoulli(clamp(scale z + offset, 0, 1))`` (``signed``: ON/OFF spikes of
    ``clamp(scale z + offset, -1, 1)``), with the sampler's surrogate. Whatever the drive's
    learned scale and shift, each neuron keeps the same share of its drives inside the window,
    so it can neither fall silent nor saturate.

    ``samples``: the mean of that many independent draws per step (a population of
    ``samples`` neurons per channel: the sampling noise's variance divided by ``samples``);
    ``sample=False``: the firing probability itself, no sampling (deterministic).
    """

    emits_spikes = True

    def __init__(
        self,
        scale: float = 1.0,
        offset: float = 0.0,
        signed: bool = False,
        eps: float = 1e-5,
        samples: int = 1,
        sample: bool = True,
    ) -> None:
        super().__init__()
        self.scale, self.offset, self.eps = scale, offset, eps
        self.samples, self.sample = samples, sample
        self.signed = signed
        self.sample_in_eval = True
        self.firing_window = (-1.0, 1.0) if signed else (0.0, 1.0)
        self.running_mean: torch.Tensor | None = None
        self.running_var: torch.Tensor | None = None

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``x`` (B, H, L) → spikes (B, H, L), zero where ``mask`` (B, 1, L) is 0."""
        if self.training or self.running_mean is None:
            weights = torch.ones_like(x[:, :1]) if mask is None else mask.to(x.dtype)
            count = weights.sum() * 1.0
            mean = (x * weights).sum(dim=(0, 2)) / count  # (H)
            var = ((x - mean.view(1, -1, 1)).square() * weights).sum(dim=(0, 2)) / count
            with torch.no_grad():
                if self.running_mean is None:
                    self.running_mean, self.running_var = mean.detach(), var.detach()
                else:
                    self.running_mean.lerp_(mean.detach(), 0.1)
                    self.running_var.lerp_(var.detach(), 0.1)
        else:
            mean, var = self.running_mean, self.running_var
        z = (x - mean.view(1, -1, 1)) * torch.rsqrt(var.view(1, -1, 1) + self.eps)
        drive = self.scale * z + self.offset
        if self.sample and (self.training or self.sample_in_eval):
            draws = [
                StochasticSpike.apply(drive, None, mask, self.signed) for _ in range(self.samples)
            ]
            return draws[0] if self.samples == 1 else torch.stack(draws).mean(0)
        probability = drive.clamp(*self.firing_window)
        return probability if mask is None else probability * mask
