"""The P-SpikeSSM backbone (encoder → blocks → pooling → decoder) and the LRA Retrieval head."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.block import BranchUniforms, PSpikeSSMBlock, Uniforms
from pspikessm.models.kernel_bank import KernelBank
from pspikessm.models.norms import apply_norm, batch_extent, make_norm
from pspikessm.models.optim_tags import exempt_norms_and_biases
from pspikessm.models.settings import BlockSettings


def valid_mask(
    lengths: torch.Tensor | None, length: int, dtype: torch.dtype
) -> torch.Tensor | None:
    """(B, 1, L) with 1 at steps ``t < lengths[b]``, or None when every step is valid."""
    if lengths is None:
        return None
    steps = torch.arange(length, device=lengths.device)
    return (steps.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(1).to(dtype)


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` (B, H, L) over the valid steps of ``mask`` (B, 1, L) → (B, H)."""
    if mask is None:
        return x.mean(dim=-1)
    return (x * mask).sum(dim=-1) / mask.sum(dim=-1).clamp_min(1.0)


class PSpikeSSM(nn.Module):
    """Probabilistic spiking SSM backbone for sequence classification.

    Args:
        num_classes: output classes (linked from the data module by the CLI).
        vocab_size: token vocabulary size; > 0 selects an embedding encoder for (B, L)
            integer inputs, 0 a linear encoder for (B, L, d_input) real inputs (linked).
        d_input: input channels of real-valued inputs (linked).
        d_model: width H of the residual stream: neurons per layer.
        n_layers: number of blocks K.
        dual_input: two-document inputs (linked from the data module): both documents are
            encoded by the same blocks and a :class:`RetrievalHead` replaces the decoder.
        block: the settings of every block (:class:`BlockSettings`; default: the paper's).

    Inputs: ``inputs`` (B, L) int64 tokens or (B, L, d_input) floats; ``lengths`` (B,) valid
    steps per sequence, or None (with ``dual_input``: (B, 2, L[, d_input]) and (B, 2));
    ``uniforms``: optional, per block the uniforms that fix its spikes (:meth:`draw_uniforms`).
    Outputs: logits (B, num_classes). :meth:`step` and :meth:`stream` run the same model one
    time step at a time (causal kernels, evaluation mode).

    Optimiser settings, as the official ones: the SSM parameters carry their own
    (:mod:`pspikessm.models.kernels.parameters`); every normalisation parameter and bias of the
    blocks and the final norm takes no weight decay.
    """

    def __init__(
        self,
        num_classes: int = 10,
        vocab_size: int = 0,
        d_input: int = 1,
        d_model: int = 128,
        n_layers: int = 4,
        dual_input: bool = False,
        block: BlockSettings | None = None,
    ) -> None:
        super().__init__()
        block = block or BlockSettings()
        for option, value in (("d_model", d_model), ("n_layers", n_layers)):
            if value < 1:
                raise ValueError(f"model.backbone.init_args.{option}={value}: expected >= 1")
        #: What decides the architecture: a checkpoint loads only into a model with the same.
        self.settings: dict[str, Any] = {
            "num_classes": num_classes,
            "vocab_size": vocab_size,
            "d_input": d_input,
            "d_model": d_model,
            "n_layers": n_layers,
            "dual_input": dual_input,
            "block": block.architecture(),
        }
        self.num_classes = num_classes
        self.two_sided = block.two_sided
        self.dual_input = dual_input
        if vocab_size > 0:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model)
        else:
            self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(PSpikeSSMBlock(d_model, block) for _ in range(n_layers))
        self.kernel_bank = KernelBank([block.ssm for block in self.blocks])
        self.final_norm = make_norm(block.norm, d_model) if block.prenorm else nn.Identity()
        self.decoder = (
            RetrievalHead(d_model, num_classes) if dual_input else nn.Linear(d_model, num_classes)
        )
        exempt_norms_and_biases(self.blocks)
        exempt_norms_and_biases(self.final_norm)

    def features(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        uniforms: Sequence[Uniforms] | None = None,
    ) -> torch.Tensor:
        """The pooled representation (B, H) of ``inputs``."""
        x = self.encoder(inputs).transpose(1, 2)  # (B H L)
        mask = valid_mask(lengths, x.shape[-1], x.dtype)
        extent = batch_extent(lengths, x.shape[-1])  # padding past the longest: no effect
        kernels = self.kernel_bank(x.shape[-1])  # per block (ΣH K) or None: all at once
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if uniforms is None else uniforms[i], extent, kernels[i])
        return masked_mean(apply_norm(self.final_norm, x, extent), mask)

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        uniforms: Sequence[Uniforms] | None = None,
    ) -> torch.Tensor:
        if self.dual_input:
            return self.decoder(*encode_pair(self.features, inputs, lengths))
        return self.decoder(self.features(inputs, lengths, uniforms))

    def draw_uniforms(
        self, batch: int, length: int, generator: torch.Generator | None = None, **like: Any
    ) -> list[Uniforms]:
        """Per block, uniforms (B, H, L) for every spike site (``like``: dtype, device)."""
        width = self.settings["d_model"]
        shape = torch.empty(batch, width, length, **like)
        return [block.draw_uniforms(shape, generator) for block in self.blocks]

    def initial_state(self, batch: int) -> dict[str, Any]:
        """Step mode: per-block recurrences (discretised now) and an empty pooled sum."""
        if self.dual_input:
            raise ValueError("step mode runs single sequences; this model takes pairs")
        return {
            "blocks": [block.initial_state(batch) for block in self.blocks],
            "sum": 0.0,
            "count": 0.0,
        }

    @torch.no_grad()
    def step(
        self,
        inputs: torch.Tensor,
        state: dict[str, Any],
        valid: torch.Tensor | None = None,
        uniforms: Sequence[Uniforms] | None = None,
    ) -> torch.Tensor:
        """Advance one step. ``inputs`` (B,) tokens or (B, d_input); ``valid`` (B,) 1/0 or
        None; ``uniforms`` per block as :meth:`draw_uniforms`, (B, H, 1). Updates ``state`` in
        place; returns the logits (B, num_classes) of the mean over the steps seen so far."""
        x = self.encoder(inputs).unsqueeze(-1)  # (B H 1)
        mask = None if valid is None else valid.to(x.dtype).view(-1, 1, 1)  # (B 1 1)
        for i, block in enumerate(self.blocks):
            x = block.step(x, state["blocks"][i], mask, None if uniforms is None else uniforms[i])
        features = self.final_norm(x)[..., 0]  # (B H)
        weight = 1.0 if mask is None else mask[..., 0]  # (B 1)
        state["sum"] = state["sum"] + features * weight
        state["count"] = state["count"] + weight
        count = torch.as_tensor(state["count"], dtype=x.dtype, device=x.device).clamp_min(1.0)
        return self.decoder(state["sum"] / count)

    @torch.no_grad()
    def stream(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        uniforms: Sequence[Uniforms] | None = None,
    ) -> torch.Tensor:
        """The logits of ``self(inputs, lengths, uniforms)`` computed one step at a time."""
        batch, length = inputs.shape[:2]
        state = self.initial_state(batch)
        logits = None
        for t in range(length):
            valid = None if lengths is None else (lengths > t)
            at_t = None if uniforms is None else _uniforms_at(uniforms, t)
            logits = self.step(inputs[:, t], state, valid, at_t)
        return logits


def _uniforms_at(uniforms: Sequence[Uniforms], t: int) -> list[Uniforms]:
    """The (B, H, 1) slice at step ``t`` of every block's uniforms."""
    return [
        [
            BranchUniforms(*(None if z is None else z[..., t : t + 1] for z in branch))
            for branch in block
        ]
        for block in uniforms
    ]


# Two-document classification (LRA Retrieval): one shared encoder, an MLP on [u, v, u·v, u−v].


def encode_pair(
    features: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    inputs: torch.Tensor,
    lengths: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode both documents of each pair with the same ``features`` function in one pass.

    Inputs: ``inputs`` (B, 2, L, ...) with ``inputs[:, 0]`` the first documents; ``lengths``
    (B, 2) or None. The two halves are stacked along the batch, first documents then second
    (2B, L, ...), so a batch norm sees both. Outputs: ``u``, ``v`` (B, H) each.
    """
    if inputs.dim() < 3 or inputs.shape[1] != 2:
        raise ValueError(
            f"a two-document model takes inputs (B, 2, L, ...), got {tuple(inputs.shape)}; "
            "set model.backbone.init_args.dual_input=false for single-sequence data"
        )
    batch = inputs.shape[0]
    stacked = inputs.transpose(0, 1).reshape(2 * batch, *inputs.shape[2:])  # (2B L ...)
    stacked_lengths = None if lengths is None else lengths.transpose(0, 1).reshape(2 * batch)
    u, v = features(stacked, stacked_lengths).split(batch)  # (B H) each
    return u, v


class RetrievalHead(nn.Module):
    """MLP with GELU on the matching features ``[u, v, u·v, u−v]`` of two encodings.

    Args:
        d_model: width H of each encoding.
        num_classes: output classes.
        d_hidden: hidden width of the MLP (default H).

    Inputs: ``u``, ``v`` (B, H). Outputs: logits (B, num_classes).
    """

    def __init__(self, d_model: int, num_classes: int, d_hidden: int | None = None) -> None:
        super().__init__()
        d_hidden = d_hidden or d_model
        self.hidden = nn.Linear(4 * d_model, d_hidden)
        self.output = nn.Linear(d_hidden, num_classes)

    def forward(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        matching = torch.cat([u, v, u * v, u - v], dim=-1)  # (B 4H)
        return self.output(F.gelu(self.hidden(matching)))
