"""Training callbacks."""

from pspikessm.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.callbacks.preemption import PreemptionCheckpoint

__all__ = [
    "LastEveryEpochCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossStop",
    "PreemptionCheckpoint",
]
