"""How validation, test and predict treat stochastic spikes (``model.eval_mode``).

``sample``: one stochastic pass, as the paper's code; ``expected``: firing probabilities
instead of spikes (deterministic); ``mc``: the mean of the class probabilities over K
stochastic passes. Each evaluated batch draws its spikes from ``(seed, rank, batch index)``
inside a forked RNG, so evaluation is reproducible and leaves the training stream untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import torch
from torch import nn

#: How evaluation treats stochastic spikes (the one definition).
EvalMode = Literal["sample", "expected", "mc"]
EVAL_MODES = get_args(EvalMode)


def check_eval_options(mode: str, mc_samples: int) -> None:
    """A clear error for an unknown ``model.eval_mode`` or ``model.mc_samples`` < 1."""
    if mode not in EVAL_MODES:
        raise ValueError(f"model.eval_mode={mode!r}: expected one of {EVAL_MODES}")
    if mc_samples < 1:
        raise ValueError(f"model.mc_samples={mc_samples}: expected an integer >= 1")


def apply_eval_mode(backbone: nn.Module, mode: EvalMode) -> None:
    """Tell every neuron that can (``sample_in_eval``) whether to sample in evaluation."""
    for module in backbone.modules():
        if hasattr(module, "sample_in_eval"):
            module.sample_in_eval = mode != "expected"


def eval_passes(mode: EvalMode, mc_samples: int) -> int:
    """Stochastic passes per evaluated example: 0 (expected), 1 (sample) or K (mc)."""
    return {"expected": 0, "sample": 1}.get(mode, mc_samples)


@contextmanager
def seeded_spikes(
    seed: int | None, rank: int, batch_idx: int, device: torch.device, dataloader_idx: int = 0
) -> Iterator[None]:
    """Seed the spikes of one evaluation batch without touching the global RNG stream
    (``seed`` None: unseeded)."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(
            ((seed * 1_000_003 + dataloader_idx) * 1_000_003 + batch_idx) * 1009 + rank
        )
        yield


def class_log_probabilities(
    forward: Callable[[], torch.Tensor], mode: EvalMode, mc_samples: int
) -> torch.Tensor:
    """Log-probabilities (B, num_classes) from ``forward()``'s logits under ``mode``."""
    if mode != "mc":
        return forward().log_softmax(dim=-1)
    probabilities = sum(forward().softmax(dim=-1) for _ in range(mc_samples))
    return (probabilities / mc_samples).clamp_min(1e-12).log()
