"""Training callbacks."""

from pspikessm.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.callbacks.preemption import PreemptionCheckpoint

__all__ = ["NonFiniteLossError", "NonFiniteLossStop", "PreemptionCheckpoint"]
