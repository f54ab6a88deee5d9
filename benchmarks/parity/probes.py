"""Probes into both ListOps models: spikes at every spike site and the membrane potentials.

Both models report under the same names, ``layer{i}/{site}``: ``input`` and ``output`` (the
first branch's input and output spikes), ``input_b`` and ``output_b`` (the second branch's),
and ``u`` / ``u_b`` (the SSM outputs, before the GELU). Statistics are taken over the valid
(unpadded) positions; ``*_pad`` ones over the padded positions.

The authors' block computes its spikes inline: every spike passes through its
``Replace.apply(clamped, spikes)`` (forward: the spikes; backward: the clamp's gradient), in
the order branch-1 input, branch-2 input, branch-1 output, branch-2 output (one branch: input,
output). :class:`AuthorsProbe` swaps that function per block for one that records, and can draw
fresh uniforms instead of the shared ones (``fresh_uniforms``, an ablation).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from pspikessm.callbacks.spike_sources import ForwardHooks, source_name
from pspikessm.models.backbone import valid_mask
from pspikessm.models.convolution import JointSSMConvolution

AUTHORS_SITES = {True: ("input", "input_b", "output", "output_b"), False: ("input", "output")}


def valid_stats(name: str, value: torch.Tensor, mask: torch.Tensor, spikes: bool) -> dict:
    """Mean (and std for real values) of ``value`` (B, H, L) over ``mask`` (B, 1, L) and over
    its complement, under ``name``."""
    stats = {}
    for suffix, weight in (("", mask), ("_pad", 1.0 - mask)):
        count = weight.sum() * value.shape[1]
        if count == 0:
            continue
        mean = (value * weight).sum() / count
        stats[f"{name}.{'rate' if spikes else 'mean'}{suffix}"] = float(mean)
        if not spikes:
            std = (((value - mean) ** 2) * weight).sum() / count
            stats[f"{name}.std{suffix}"] = float(std.sqrt())
    return stats


class OursProbe:
    """Forward hooks on this project's spike sources and SSM convolutions, named and hooked as
    the firing-rate monitor does (:mod:`pspikessm.callbacks.spike_sources`).

    A block's SSMs run as one :class:`JointSSMConvolution` (``blocks.{i}.ssm``) whose output
    is every branch's ``u``: branch j's is named as its own SSM (``branches.{j}.ssm``).
    """

    def __init__(self, backbone: nn.Module) -> None:
        self.records: dict[str, torch.Tensor] = {}
        self.hooks = ForwardHooks()
        self.hooks.on_spikes(backbone, self._save)
        for name, module in backbone.named_modules():
            if isinstance(module, JointSSMConvolution):
                self.hooks.add(module, self._membranes_saver(name.rpartition(".")[0]))

    def _save(self, name: str, value: torch.Tensor, mask: torch.Tensor | None) -> None:
        self.records[name] = value.detach()  # (B H L)

    def _membranes_saver(self, block: str):
        def hook(module, args, kwargs, output):
            for j, membrane in enumerate(output):  # (B H L) per branch
                self._save(source_name(f"{block}.branches.{j}.ssm"), membrane, None)

        return hook

    def stats(self, lengths: torch.Tensor) -> dict[str, float]:
        out = {}
        for name, value in self.records.items():
            mask = valid_mask(lengths, value.shape[-1], value.dtype)
            out.update(valid_stats(name, value, mask, spikes=name.split("/")[1][0] != "u"))
        return out

    def remove(self) -> None:
        self.hooks.remove()


class AuthorsProbe:
    """Records the authors' spikes (through ``Replace``) and SSM outputs (FFTConv hooks).

    Ablations: ``fresh_uniforms``, sites (names as in :data:`AUTHORS_SITES`) whose spikes are
    redrawn from new uniforms instead of the shared ``random_uniform``; ``mask_source``, an
    object whose ``mask`` (B, 1, L) zeroes the spikes at padded positions (every site).
    """

    def __init__(
        self, backbone: nn.Module, fresh_uniforms: tuple[str, ...] = (), mask_source=None
    ) -> None:
        self.mask_source = mask_source
        self.records: dict[str, torch.Tensor] = {}
        self.handles = []
        self.calls: dict[int, int] = defaultdict(int)
        self.blocks = list(backbone.layers)
        for i, block in enumerate(self.blocks):
            sites = AUTHORS_SITES[bool(block.bidirectional)]
            block.Replace = self._replace(i, sites, fresh_uniforms)
            branches = [("u", block.layer.layer)]
            if block.bidirectional:
                branches.append(("u_b", block.reverse_layer.layer))
            for site, conv in branches:
                hook = conv.register_forward_hook(self._saver(f"layer{i}/{site}"))
                self.handles.append(hook)
            self.handles.append(block.register_forward_pre_hook(self._reset(i)))

    def _reset(self, layer: int):
        def hook(module, args):
            self.calls[layer] = 0

        return hook

    def _saver(self, name: str):
        def hook(module, args, output):
            self.records[name] = output[0].detach().transpose(1, 2)  # (B L H) → (B H L)

        return hook

    def _replace(self, layer: int, sites: tuple[str, ...], fresh: tuple[str, ...]):
        probe = self

        class Replace(torch.autograd.Function):
            @staticmethod
            def forward(ctx, clamped, spikes):
                site = sites[probe.calls[layer] % len(sites)]
                probe.calls[layer] += 1
                if site in fresh:
                    spikes = (torch.rand_like(clamped) < clamped).to(clamped.dtype)
                if probe.mask_source is not None:
                    spikes = spikes * probe.mask_source.mask.transpose(1, 2)  # (B L 1)
                probe.records[f"layer{layer}/{site}"] = spikes.detach().transpose(1, 2)
                return spikes

            @staticmethod
            def backward(ctx, grad):
                return grad, grad

        return Replace

    def stats(self, lengths: torch.Tensor) -> dict[str, float]:
        return OursProbe.stats(self, lengths)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        for block in self.blocks:
            vars(block).pop("Replace", None)  # back to the class's own Replace
