"""Training-loop switches for stochastic spikes: the sampling warm-up and several spike samples
per step (optionally antithetic). Used by :class:`pspikessm.module.SequenceClassifier`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def set_sampling(model: nn.Module, sampling: float) -> None:
    """Set ``sampling`` (α in ``p + α (s - p)``) of every neuron in ``model`` that has one."""
    for module in model.modules():
        if hasattr(module, "sampling"):
            module.sampling = sampling


def warmup_sampling(step: int, warmup_steps: int) -> float:
    """α at optimiser step ``step``: 0 (probabilities) at step 0, rising linearly to 1 (spikes)
    at ``warmup_steps`` and after; 1 throughout when ``warmup_steps`` is 0."""
    if warmup_steps <= 0:
        return 1.0
    return min(1.0, step / warmup_steps)


def antithetic_uniforms(uniforms: Sequence) -> list:
    """``1 - u`` for every uniform tensor ``u`` of a backbone's ``draw_uniforms`` output (per
    block, per branch, an (input, output) pair; None entries stay None). ``1 - u`` lies in
    (0, 1], not [0, 1): the sampler's test ``z < x`` still spikes with probability
    ``clamp(x, 0, 1)``, and ``z = 1`` (probability 2^-24) spikes only where ``x > 1``."""
    return [
        [tuple(None if u is None else 1.0 - u for u in pair) for pair in block]
        for block in uniforms
    ]


def sampled_logits(
    backbone: nn.Module,
    inputs: torch.Tensor,
    lengths: torch.Tensor | None,
    samples: int,
    antithetic: bool = False,
) -> list[torch.Tensor]:
    """``samples`` forward passes of ``backbone`` on the same batch, each with its own spikes:
    independent draws, or with ``antithetic`` pairs whose second pass uses ``1 - u`` of the
    first pass's uniforms ``u`` (``samples`` even). Returns ``samples`` logits (B, classes)."""
    if not antithetic:
        return [backbone(inputs, lengths) for _ in range(samples)]
    batch, length = inputs.shape[:2]
    logits = []
    for _ in range(samples // 2):
        uniforms = backbone.draw_uniforms(batch, length, device=inputs.device)
        logits.append(backbone(inputs, lengths, uniforms))
        logits.append(backbone(inputs, lengths, antithetic_uniforms(uniforms)))
    return logits


def sampled_loss(
    backbone: nn.Module,
    batch: Sequence[torch.Tensor],
    samples: int = 1,
    antithetic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy averaged over ``samples`` spike samples, so its gradient is the mean of
    the ``samples`` per-sample gradients; and the mean logits (B, classes) for the metrics.

    ``batch``: ``(inputs, lengths, targets)``.
    """
    inputs, lengths, targets = batch
    logits = sampled_logits(backbone, inputs, lengths, samples, antithetic)
    loss = torch.stack([F.cross_entropy(out, targets) for out in logits]).mean()
    return loss, torch.stack(logits).mean(dim=0).detach()


def check_options(backbone: nn.Module, samples: int, antithetic: bool) -> None:
    """Errors naming the option when ``train_samples``/``antithetic`` cannot work."""
    if samples < 1:
        raise ValueError(f"model.train_samples must be >= 1, got {samples}")
    if not antithetic:
        return
    if samples % 2:
        raise ValueError(
            f"model.antithetic draws pairs (u, 1 - u): model.train_samples must be even, "
            f"got {samples}"
        )
    if not hasattr(backbone, "draw_uniforms") or getattr(backbone, "dual_input", False):
        raise ValueError(
            "model.antithetic needs a backbone whose forward takes uniforms (draw_uniforms; "
            f"single-sequence inputs); {type(backbone).__name__} does not"
        )
