"""Lightning callbacks: firing sparsity (``sparsity/`` tags), energy (``energy/`` tags), the run's
summary and ``hp_metric``, and the run's safety net (``last.ckpt`` every epoch and on
preemption, non-finite loss stop)."""

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.callbacks.preemption import PreemptionCheckpoint
from pspikessm.callbacks.run_summary import RunSummary
from pspikessm.callbacks.spike_sources import SpikeCounts, spike_sources
from pspikessm.models.neurons import is_spike_source

__all__ = [
    "EnergyEstimate",
    "FiringRateMonitor",
    "LastEveryEpochCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossStop",
    "PreemptionCheckpoint",
    "RunSummary",
    "SpikeCounts",
    "is_spike_source",
    "spike_sources",
]
