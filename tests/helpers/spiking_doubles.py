"""Test doubles: a backbone whose spike probabilities and random draws are fixed by hand."""

from __future__ import annotations

import torch
from torch import nn

from pspikessm.models.backbone import masked_mean, valid_mask
from pspikessm.models.neurons.pspike import SpikeSampler


def alternating_uniforms(batch: int, neurons: int, length: int) -> torch.Tensor:
    """(B, H, L) uniforms 0.25 at even steps and 0.75 at odd ones: p = 0.5 fires at even t."""
    steps = torch.arange(length)
    return (0.25 + 0.5 * (steps % 2)).float().expand(batch, neurons, length)


class ForcedBlock(nn.Module):
    """Input and output samplers fed constant per-neuron probabilities and fixed uniforms.

    Same module names as :class:`PSpikeSSMBlock`'s first branch
    (``branches.0.input_spikes``, ``branches.0.output_spikes``).
    """

    def __init__(self, p_in: list[float], p_out: list[float], signed: bool = False) -> None:
        super().__init__()
        branch = nn.Module()
        branch.input_spikes = SpikeSampler(signed=signed)
        branch.output_spikes = SpikeSampler(signed=signed)
        self.branches = nn.ModuleList([branch])
        self.register_buffer("p_in", torch.tensor(p_in))
        self.register_buffer("p_out", torch.tensor(p_out))
        self.gain = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, _, length = x.shape
        uniforms = alternating_uniforms(batch, len(self.p_in), length)
        p_in = self.p_in[None, :, None].expand(batch, -1, length)
        p_out = self.p_out[None, :, None].expand(batch, -1, length)
        branch = self.branches[0]
        branch.input_spikes(p_in, mask, uniforms)
        spikes = branch.output_spikes(p_out, mask, uniforms)  # (B H L)
        return x + self.gain * spikes


class ForcedSpikes(nn.Module):
    """Embedding → ForcedBlocks → masked mean → linear; inputs (B, L) tokens and lengths.
    ``signed``: the samplers draw signed spikes (the drives are then in [-1, 1])."""

    def __init__(
        self,
        probabilities: list[tuple[list[float], list[float]]],
        vocab: int = 20,
        signed: bool = False,
    ):
        super().__init__()
        width = len(probabilities[0][0])
        self.encoder = nn.Embedding(vocab, width)
        self.blocks = nn.ModuleList(
            ForcedBlock(p_in, p_out, signed) for p_in, p_out in probabilities
        )
        self.decoder = nn.Linear(width, 2)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        x = self.encoder(inputs).transpose(1, 2)  # (B H L)
        mask = valid_mask(lengths, x.shape[-1], x.dtype)
        for block in self.blocks:
            x = block(x, mask)
        return self.decoder(masked_mean(x, mask))


class NoSpikes(nn.Module):
    """A non-spiking baseline: embedding, mean, linear."""

    def __init__(self, vocab: int = 20, width: int = 4) -> None:
        super().__init__()
        self.encoder = nn.Embedding(vocab, width)
        self.decoder = nn.Linear(width, 2)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.decoder(self.encoder(inputs).mean(dim=1))


def token_batches(lengths: list[int], batch_size: int, vocab: int = 20):
    """A list dataset of token sequences of the given lengths, and a padding DataLoader."""
    from torch.utils.data import DataLoader

    from pspikessm.data.collate import pad_collate

    generator = torch.Generator().manual_seed(0)
    items = [
        (torch.randint(1, vocab, (n,), generator=generator), i % 2) for i, n in enumerate(lengths)
    ]
    return DataLoader(items, batch_size=batch_size, collate_fn=pad_collate)
