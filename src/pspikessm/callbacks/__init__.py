"""Lightning callbacks: firing sparsity (``sparsity/`` tags), energy (``energy/`` tags), the run's
summary and ``hp_metric``, and the console's progress output (a bar on a terminal, lines in a job
log). The run-safety callbacks are in :mod:`pspikessm.runtime`."""

from pspikessm.callbacks.energy import EnergyEstimate
from pspikessm.callbacks.firing_rate import FiringRateMonitor
from pspikessm.callbacks.job_log import JobLog, TerminalProgressBar
from pspikessm.callbacks.run_summary import RunSummary
from pspikessm.callbacks.spike_sources import SpikeCounts, spike_sources
from pspikessm.models.neurons import is_spike_source

__all__ = [
    "EnergyEstimate",
    "FiringRateMonitor",
    "JobLog",
    "RunSummary",
    "SpikeCounts",
    "TerminalProgressBar",
    "is_spike_source",
    "spike_sources",
]
