"""NormalizedSpikeSampler: P-SpikeSSM spikes from a drive standardised per neuron, so that the
firing window follows the drive and no neuron falls silent for good."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.neurons.pspike import StochasticSpike


def normalized_drive_reference(
    x: torch.Tensor,
    mask: torch.Tensor | None,
    mean: torch.Tensor | None,
    var: torch.Tensor | None,
    scale: float,
    offset: float,
    eps: float,
) -> torch.Tensor:
    """The plain form of :meth:`NormalizedSpikeSampler.drive`: ``scale (x - m) / sqrt(v + eps)
    + offset``, with ``m``, ``v`` (H,) the mean and (biased) variance of ``x`` (B, H, L) over
    the valid steps of ``mask`` (B, 1, L) when ``mean`` is None, else the given ones."""
    if mean is None:
        valid = torch.ones_like(x[:, :1]) if mask is None else mask.to(x.dtype)
        count = valid.sum() * 1.0
        mean = (x * valid).sum(dim=(0, 2)) / count
        var = ((x - mean[None, :, None]) ** 2 * valid).sum(dim=(0, 2)) / count
    return scale * (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + eps) + offset


class NormalizedSpikeSampler(nn.Module):
    """Bernoulli spikes of ``clamp(scale z + offset, 0, 1)``, ``z`` the drive standardised per
    neuron: ``z = (x - mean) / sqrt(var + eps)``.

    In training ``mean`` and ``var`` are the drive's statistics over the batch's valid steps
    (as BatchNorm's, without its learnable affine), and their running averages
    (``momentum``) are kept for evaluation and step mode. Whatever scale and shift the
    weights upstream learn, each neuron keeps the same share of its drives inside the firing
    window, where gradient passes: it can neither fall silent for good nor saturate. With the
    default ``offset = -1/4`` a standardised drive fires at about 0.24 on average
    (``E[clamp(z - 1/4, 0, 1)]`` for a normal ``z``). The spike and its surrogate gradient are
    the :class:`~pspikessm.models.neurons.pspike.SpikeSampler`'s.

    Args:
        num_neurons: H, the neurons of the site (the block passes it).
        scale, offset: the standardised drive's map into the firing window.
        momentum: of the running statistics.
        eps: added to the variance.
        sample_in_eval: keep sampling in evaluation (False: the firing probabilities; set from
            ``model.eval_mode``).

    Inputs: ``x`` (B, H, L); optional ``mask`` (B, 1, L), 1 at valid steps; optional
    ``uniforms`` (B, H, L) in [0, 1). Outputs: spikes (B, H, L), zero at padded steps.
    Buffers: ``running_mean``, ``running_var`` (H,).
    """

    emits_spikes = True
    takes_uniforms = True

    def __init__(
        self,
        num_neurons: int,
        scale: float = 1.0,
        offset: float = -0.25,
        momentum: float = 0.1,
        eps: float = 1e-5,
        sample_in_eval: bool = True,
    ) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"NormalizedSpikeSampler(scale={scale}): expected a scale > 0")
        self.scale, self.offset = scale, offset
        self.momentum, self.eps, self.sample_in_eval = momentum, eps, sample_in_eval
        self.firing_window = (0.0, 1.0)
        self.register_buffer("running_mean", torch.zeros(num_neurons))
        self.register_buffer("running_var", torch.ones(num_neurons))
        # The (mean, 1/std) pair of the last call, (H,) each: window_drive's statistics.
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def statistics(
        self, x: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, 1 / std), (H,) each: of this batch (training, updating the running
        statistics) or the running ones (evaluation)."""
        if not self.training:
            return self.running_mean, torch.rsqrt(self.running_var + self.eps)
        valid = torch.ones_like(x[:, :1]) if mask is None else mask.to(x.dtype)
        count = valid.sum().clamp_min(1.0) * x.shape[0] / valid.shape[0]
        mean = (x * valid).sum(dim=(0, 2)) / count  # (H)
        var = ((x - mean.view(1, -1, 1)).square() * valid).sum(dim=(0, 2)) / count  # (H)
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.detach().to(self.running_var.dtype), self.momentum)
        return mean, torch.rsqrt(var + self.eps)

    def window_drive(self, x: torch.Tensor) -> torch.Tensor:
        """The drive in the firing window's units, ``scale z + offset`` (B, H, L), for the
        input ``x`` of the last call (the monitors' drive statistics)."""
        if self._last is None:
            raise RuntimeError("window_drive needs a forward call first")
        mean, inv_std = self._last
        return self.drive(x, mean, inv_std)

    def drive(self, x: torch.Tensor, mean: torch.Tensor, inv_std: torch.Tensor) -> torch.Tensor:
        """``scale (x - mean) inv_std + offset`` for ``x`` (B, H, L) and (H,) statistics."""
        factor = (self.scale * inv_std).view(1, -1, 1)
        return torch.addcmul((self.offset - mean.view(1, -1, 1) * factor), x, factor)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.fire(self.normalized(x, mask), mask, uniforms)

    def normalized(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The drive ``scale z + offset`` (B, H, L) of ``x`` (B, H, L), with this call's
        statistics (:meth:`statistics`), which :meth:`window_drive` reuses."""
        mean, inv_std = self.statistics(x, mask)
        self._last = (mean.detach(), inv_std.detach())
        return self.drive(x, mean, inv_std)

    def fire(
        self, drive: torch.Tensor, mask: torch.Tensor | None, uniforms: torch.Tensor | None
    ) -> torch.Tensor:
        """Spikes of the normalised ``drive`` (B, H, L), or its firing probabilities in
        evaluation without sampling; zero where ``mask`` (B, 1, L) is 0."""
        if self.training or self.sample_in_eval:
            return StochasticSpike.apply(drive, uniforms, mask)
        probability = drive.clamp(*self.firing_window)
        return probability if mask is None else probability * mask

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, offset={self.offset}, momentum={self.momentum}, "
            f"sample_in_eval={self.sample_in_eval}"
        )
