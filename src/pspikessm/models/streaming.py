"""Streaming (step) mode: a trained backbone run one time step at a time with explicit state.

Each block keeps the state of its SSM recurrences (:mod:`pspikessm.models.recurrence`) and of
its LIF neurons; pooling keeps a running masked sum. With the same uniforms the spikes are the
ones the convolution mode draws (up to rounding in the membrane: see
``tests/test_streaming.py``), so a model trained in parallel can be deployed on a stream or on
step-based hardware. Causal kernels only; two-sided models refuse.

Example::

    model.eval()
    state = initial_state(model, batch=1)
    for x_t in stream:                        # x_t: (1,) tokens or (1, d_input) features
        logits_t = step(model, x_t, state)    # the prediction from everything seen so far
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pspikessm.models.backbone import PSpikeSSM


def _require_streamable(model: nn.Module) -> PSpikeSSM:
    if not isinstance(model, PSpikeSSM):
        raise TypeError(f"step mode needs a PSpikeSSM backbone; {type(model).__name__} has none")
    if model.bidirectional:
        raise ValueError(
            "step mode needs causal SSM kernels, but this model has two-sided kernels "
            "(bidirectional=True); train it with bidirectional: false to stream it"
        )
    if model.training:
        raise RuntimeError("step mode runs in evaluation mode; call model.eval() first")
    return model


def draw_uniforms(
    model: PSpikeSSM,
    batch: int,
    length: int,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> list[dict[str, torch.Tensor]]:
    """One (B, H, L) uniform tensor per stochastic sampler, grouped per block by name."""
    width = model.decoder.in_features
    return [
        {
            name: torch.rand(batch, width, length, generator=generator, dtype=dtype, device=device)
            for name in block.sampler_names()
        }
        for block in model.blocks
    ]


def initial_state(model: PSpikeSSM, batch: int) -> dict[str, Any]:
    """The state at t = 0: per-block recurrences (discretised now) and an empty pooled sum."""
    model = _require_streamable(model)
    return {
        "blocks": [block.initial_state(batch) for block in model.blocks],
        "sum": 0.0,
        "count": 0.0,
    }


@torch.no_grad()
def step(
    model: PSpikeSSM,
    inputs: torch.Tensor,
    state: dict[str, Any],
    valid: torch.Tensor | None = None,
    uniforms: Sequence[Mapping[str, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Advance one step. ``inputs`` (B,) tokens or (B, d_input); ``valid`` (B,) 1/0 or None;
    ``uniforms``: per block, name → (B, H) or (B, H, 1). Updates ``state`` in place and returns
    the logits (B, num_classes) of the masked mean over the steps seen so far."""
    model = _require_streamable(model)
    x = model.encoder(inputs).unsqueeze(-1)  # (B H 1)
    mask = None if valid is None else valid.to(x.dtype).view(-1, 1, 1)  # (B 1 1)
    for i, block in enumerate(model.blocks):
        u = None
        if uniforms is not None:
            u = {name: v.view(*v.shape[:2], 1) for name, v in uniforms[i].items()}
        x = block.step(x, state["blocks"][i], mask, u)
    features = model.final_norm(x)[..., 0]  # (B H)
    weight = 1.0 if mask is None else mask[..., 0]  # (B 1)
    state["sum"] = state["sum"] + features * weight
    state["count"] = state["count"] + weight
    count = torch.as_tensor(state["count"], dtype=x.dtype, device=x.device).clamp_min(1.0)
    return model.decoder(state["sum"] / count)


@torch.no_grad()
def stream(
    model: PSpikeSSM,
    inputs: torch.Tensor,
    lengths: torch.Tensor | None = None,
    uniforms: Sequence[Mapping[str, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """The logits of ``model(inputs, lengths, uniforms)`` computed step by step.

    ``inputs`` (B, L) or (B, L, d_input); ``uniforms`` as for the model's forward, (B, H, L).
    """
    batch, length = inputs.shape[:2]
    state = initial_state(model, batch)
    logits = None
    for t in range(length):
        valid = None if lengths is None else (lengths > t)
        u_t = None
        if uniforms is not None:
            u_t = [{name: v[..., t] for name, v in block.items()} for block in uniforms]
        logits = step(model, inputs[:, t], state, valid, u_t)
    return logits
