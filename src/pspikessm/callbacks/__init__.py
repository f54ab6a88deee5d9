"""Lightning callbacks: firing sparsity (``sparsity/`` tags), energy (``energy/`` tags), the run's
summary and ``hp_metric``, the console's progress output (a bar on a terminal, lines in a job
log), and the run's safety net (``last.ckpt`` every epoch and on
preemption, non-finite loss stop)."""

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.callbacks.job_log import JobLog, TerminalProgressBar
from pspikessm.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.callbacks.preemption import PreemptionCheckpoint
from pspikessm.callbacks.run_summary import RunSummary
from pspikessm.callbacks.spike_sources import SpikeCounts, is_spike_source, spike_sources

__all__ = [
    "EnergyEstimate",
    "FiringRateMonitor",
    "JobLog",
    "LastEveryEpochCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossStop",
    "PreemptionCheckpoint",
    "RunSummary",
    "SpikeCounts",
    "TerminalProgressBar",
    "is_spike_source",
    "spike_sources",
]
