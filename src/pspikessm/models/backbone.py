"""The P-SpikeSSM sequence classifier: encoder, K blocks, masked mean pooling, decoder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import nn

from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.norms import make_norm
from pspikessm.models.retrieval_head import RetrievalHead, encode_pair

#: Settings that decide the model's architecture: a checkpoint only loads into a model built
#: with the same values (``SequenceClassifier.on_load_checkpoint`` compares them).
ARCHITECTURE_SETTINGS = (
    "num_classes",
    "vocab_size",
    "d_input",
    "d_model",
    "d_state",
    "n_layers",
    "kernel",
    "kernel_args",
    "init",
    "bidirectional",
    "norm",
    "prenorm",
    "residual",
    "neuron",
    "neuron_args",
    "mixer",
    "second_branch",
    "dual_input",
)


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
        d_model: neurons per layer H.
        d_state: state size N per neuron.
        n_layers: number of blocks K.
        kernel: SSM kernel family (``diag``: S4D, Vandermonde; ``dplr``: S4, Cauchy).
        kernel_args: options of that kernel family (``dplr``: ``shared: false`` gives every
            neuron its own A, B, the paper's Pathfinder setting).
        init: SSM init (``legs`` or ``lin``).
        bidirectional: two-sided (non-causal) kernels; False for streaming tasks.
        norm: ``batch``, ``layer`` or ``none``.
        prenorm: pre-norm blocks (with a final norm) instead of post-norm.
        dropout: dropout inside the blocks.
        residual: residual connections around the blocks.
        dt_min, dt_max: range of the initial SSM step.
        ssm_lr: learning rate of the SSM's A and B (zero weight decay).
        dt_lr: learning rate of dt; None uses the global rate.
        eval_mode: spikes in evaluation: ``sample`` (stochastic) or ``expected`` (p).
        neuron: ``pspike`` (the model), or a baseline: ``gelu`` (non-spiking S4D/S4),
            ``binary`` (Binary S4D), ``lif`` (LIF-SSM); ``neuron_args`` its settings.
        mixer: SpikeMixer activation ``gelu`` / ``relu``, or ``none`` (ablation: no mixer).
        second_branch: a second SSM branch per layer, mixed 2H → H.
        dual_input: two-document inputs (linked from the data module): both documents are
            encoded by the same blocks and a :class:`RetrievalHead` replaces the decoder.

    Inputs: ``inputs`` (B, L) int64 tokens or (B, L, d_input) floats; ``lengths`` (B,) valid
    steps per sequence, or None (with ``dual_input``: (B, 2, L[, d_input]) and (B, 2));
    ``uniforms``: optional, one mapping per block from sampler
    name to (B, H, L) uniforms (:func:`pspikessm.models.streaming.draw_uniforms`).
    Outputs: logits (B, num_classes). :mod:`pspikessm.models.streaming` runs the same model
    one time step at a time.
    """

    def __init__(
        self,
        num_classes: int = 10,
        vocab_size: int = 0,
        d_input: int = 1,
        d_model: int = 128,
        d_state: int = 64,
        n_layers: int = 4,
        kernel: str = "diag",
        init: str = "legs",
        bidirectional: bool = False,
        norm: str = "batch",
        prenorm: bool = False,
        dropout: float = 0.0,
        residual: bool = True,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        dt_lr: float | None = None,
        eval_mode: str = "sample",
        dual_input: bool = False,
        kernel_args: dict[str, Any] | None = None,
        neuron: Literal["pspike", "gelu", "binary", "lif"] = "pspike",
        neuron_args: dict[str, Any] | None = None,
        mixer: Literal["gelu", "relu", "none"] = "gelu",
        second_branch: bool = False,
    ) -> None:
        super().__init__()
        arguments = locals()
        self.settings = {key: arguments[key] for key in ARCHITECTURE_SETTINGS}
        self.bidirectional = bidirectional
        self.num_classes = num_classes
        self.dual_input = dual_input
        if vocab_size > 0:
            self.encoder: nn.Module = nn.Embedding(vocab_size, d_model)
        else:
            self.encoder = nn.Linear(d_input, d_model)
        self.blocks = nn.ModuleList(
            PSpikeSSMBlock(
                d_model,
                d_state,
                kernel=kernel,
                init=init,
                bidirectional=bidirectional,
                norm=norm,
                prenorm=prenorm,
                dropout=dropout,
                residual=residual,
                dt_min=dt_min,
                dt_max=dt_max,
                ssm_lr=ssm_lr,
                dt_lr=dt_lr,
                eval_mode=eval_mode,
                kernel_args=kernel_args,
                neuron=neuron,
                neuron_args=neuron_args,
                mixer=mixer,
                second_branch=second_branch,
            )
            for _ in range(n_layers)
        )
        self.final_norm = make_norm(norm, d_model) if prenorm else nn.Identity()
        self.decoder = (
            RetrievalHead(d_model, num_classes) if dual_input else nn.Linear(d_model, num_classes)
        )

    def features(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        uniforms: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """The pooled representation (B, H) of ``inputs``."""
        x = self.encoder(inputs).transpose(1, 2)  # (B H L)
        mask = valid_mask(lengths, x.shape[-1], x.dtype)
        for i, block in enumerate(self.blocks):
            x = block(x, mask, None if uniforms is None else uniforms[i])
        return masked_mean(self.final_norm(x), mask)

    def forward(
        self,
        inputs: torch.Tensor,
        lengths: torch.Tensor | None = None,
        uniforms: Sequence[Mapping[str, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        if self.dual_input:
            return self.decoder(*encode_pair(self.features, inputs, lengths))
        return self.decoder(self.features(inputs, lengths, uniforms))


def is_spike_source(module: nn.Module) -> bool:
    """True when ``module``'s outputs are spikes: its class sets ``emits_spikes = True``.

    :class:`SpikeSampler` (P-SpikeSSM) and the baselines' spiking neurons do; a neuron kind of
    your own opts in the same way, keeping the calling convention ``module(x, mask, uniforms)``
    → (B, H, L) spikes, zero at padded steps.
    """
    return bool(getattr(module, "emits_spikes", False))


def spike_samplers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every spike-producing module in ``model`` with its qualified name, in forward order.

    Forward hooks on them observe every spike tensor; the non-spiking baseline has none.
    """
    return [(name, m) for name, m in model.named_modules() if is_spike_source(m)]
