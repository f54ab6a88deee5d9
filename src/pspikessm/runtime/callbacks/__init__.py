"""The run-safety callbacks (see :mod:`pspikessm.runtime`)."""

from pspikessm.runtime.callbacks.last_checkpoint import LastEveryEpochCheckpoint
from pspikessm.runtime.callbacks.nonfinite import NonFiniteLossError, NonFiniteLossStop
from pspikessm.runtime.callbacks.preemption import PREEMPTED_EXIT_CODE, PreemptionCheckpoint
from pspikessm.runtime.callbacks.run_record import RunConfigRecord
from pspikessm.runtime.callbacks.training_state import TrainingStateCheckpoint

__all__ = [
    "PREEMPTED_EXIT_CODE",
    "LastEveryEpochCheckpoint",
    "NonFiniteLossError",
    "NonFiniteLossStop",
    "PreemptionCheckpoint",
    "RunConfigRecord",
    "TrainingStateCheckpoint",
]
