"""Lightning callbacks: firing sparsity (``sparsity/`` tags), energy (``energy/`` tags), and the
run's safety net (``last.ckpt`` every epoch and on preemption, non-finite loss stop)."""

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.callbacks.preemption import PreemptionCheckpoint
from pspikessm.callbacks.spike_sources import SpikeCounts, is_spike_source, spike_sources

__all__ = [
    "EnergyEstimate",
    "FiringRateMonitor",
    "LastEveryEpochCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossStop",
    "PreemptionCheckpoint",
    "SpikeCounts",
    "is_spike_source",
    "spike_sources",
]
