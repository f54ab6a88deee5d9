"""Lightning callbacks: firing sparsity (``sparsity/`` tags) and energy (``energy/`` tags)."""

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.callbacks.spike_sources import SpikeCounts, is_spike_source, spike_sources

__all__ = ["EnergyEstimate", "FiringRateMonitor", "SpikeCounts", "is_spike_source", "spike_sources"]
