"""The spike random streams: distinct per process, saved in checkpoints so resumes are exact.

Spikes are drawn from torch's global generator. Every process seeds it identically
(``seed_everything``), which makes the model initialisation identical everywhere; once the
model exists, :func:`offset_for_rank` gives processes 1..W-1 streams of their own while
process 0 keeps its stream, so a one-process run is unchanged. :func:`rng_state` and
:func:`set_rng_state` carry the generators through a checkpoint (Lightning does not).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def rng_state() -> dict[str, Any]:
    """The states of torch's CPU and CUDA generators, NumPy's and Python's.

    Only tensors and plain Python values, so checkpoints stay loadable with
    ``torch.load(weights_only=True)``.
    """
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()  # noqa: NPY002 (the global one)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (kind, torch.from_numpy(keys.copy()), position, has_gauss, cached_gauss),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch.cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (CUDA states only when the device count matches)."""
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, cached_gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), position, has_gauss, cached_gauss))  # noqa: NPY002
    random.setstate(state["python"])
    cuda_states = state.get("torch.cuda")
    if (
        cuda_states is not None
        and torch.cuda.is_available()
        and len(cuda_states) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(cuda_states)


def offset_for_rank(rank: int) -> None:
    """Give process ``rank`` its own torch stream, derived from the current (shared) state.

    Rank 0 is left untouched. Other ranks draw one number from the shared state and reseed
    CPU and CUDA generators with a hash of (number, rank): distinct streams per rank, and a
    deterministic function of the state every rank started from.
    """
    if rank == 0:
        return
    shared = int(torch.randint(0, 2**62, (1,)).item())
    torch.manual_seed(hash((shared, rank)) % 2**63)
