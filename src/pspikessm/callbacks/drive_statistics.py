"""Where a spike site's drive sits against its firing window: the early sign of dying neurons.

A P-SpikeSSM neuron fires with probability ``clamp(x, 0, 1)`` of its drive ``x`` and passes
gradient only inside that window (:class:`~pspikessm.models.neurons.pspike.StochasticSpike`).
A neuron whose drive leaves the window for good is silent (below) or always on (above), and
no gradient brings it back. :class:`DriveStatistics` counts, per site, how many drive values
lie outside the window and their mean, from the same forward hooks that count the spikes
(:class:`~pspikessm.callbacks.spike_sources.ForwardHooks`): no extra forward pass.

A neuron declares its window with the attribute ``firing_window = (low, high)``
(:func:`firing_window`); a neuron without one (LIF: its surrogate passes gradient everywhere)
gets the mean drive only. A neuron that maps its input into the window first (the
:class:`~pspikessm.models.neurons.normalized.NormalizedSpikeSampler`) has a method
``window_drive(x)`` that gives the drive in the window's units (:func:`drive_in_window`).
"""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import Metric


def firing_window(neuron: nn.Module) -> tuple[float, float] | None:
    """The drive interval ``(low, high)`` inside which ``neuron`` passes gradient, or None."""
    window = getattr(neuron, "firing_window", None)
    return None if window is None else (float(window[0]), float(window[1]))


def drive_in_window(neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The drive of ``neuron``'s last call (B, H, L) in its firing window's units, from its
    input ``x``: ``neuron.window_drive(x)`` where the neuron has that method, else ``x``."""
    window_drive = getattr(neuron, "window_drive", None)
    return x if window_drive is None else window_drive(x)


class DriveStatistics(Metric):
    """Sums over the valid (example, step, neuron) drive values of one spike site.

    States (summed across processes, exact under DDP): ``values`` () drive values seen;
    ``drive_sum`` () their sum; ``outside`` () those outside the firing window (the window's
    edges count as outside: the clamp passes no gradient there); ``grad_squares`` () and
    ``grad_values`` (): the squared gradient of the loss at the drive and how many values it
    covers (:meth:`update_gradient`, training only).

    Inputs of :meth:`update`: ``drive`` (B, H, L); ``mask`` (B, 1, L) or None.
    """

    full_state_update = False

    def __init__(self, window: tuple[float, float] | None) -> None:
        super().__init__()
        self.window = window
        for state in ("values", "drive_sum", "outside", "grad_squares", "grad_values"):
            self.add_state(state, torch.zeros((), dtype=torch.float64), "sum")

    def update(self, drive: torch.Tensor, mask: torch.Tensor | None) -> None:
        drive = drive.detach()
        valid = _valid(drive, mask)
        self.values += valid.sum(dtype=torch.float64)
        self.drive_sum += torch.where(valid, drive, 0).sum(dtype=torch.float64)
        if self.window is not None:
            low, high = self.window
            outside = (drive <= low) | (drive >= high)
            self.outside += (outside & valid).sum(dtype=torch.float64)

    def update_gradient(self, gradient: torch.Tensor, mask: torch.Tensor | None) -> None:
        """The loss's gradient (B, H, L) at the drive, over the valid steps of ``mask``."""
        valid = _valid(gradient, mask)
        self.grad_squares += torch.where(valid, gradient, 0).square().sum(dtype=torch.float64)
        self.grad_values += valid.sum(dtype=torch.float64)

    def compute(self) -> dict[str, torch.Tensor]:
        """``drive_mean``; ``drive_outside`` (fraction, NaN without a window); ``grad_rms``
        (root mean square of the gradient at the drive, NaN when none was recorded)."""
        values = self.values.clamp_min(1.0)
        nan = torch.full_like(self.values, float("nan"))
        return {
            "drive_mean": self.drive_sum / values,
            "drive_outside": nan if self.window is None else self.outside / values,
            "grad_rms": (self.grad_squares / self.grad_values).sqrt()
            if self.grad_values > 0
            else nan,
        }


def _valid(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Boolean (B, H, L): True at the valid steps of ``mask`` (B, 1, L) (every step if None)."""
    if mask is None:
        return torch.ones_like(values, dtype=torch.bool)
    return (mask != 0).expand_as(values)
