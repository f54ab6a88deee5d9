"""Named experiments for ``parity.py``: change one behaviour of one model, measure the effect.

Authors' side (``--authors-ablation NAME``): their code is loaded unchanged and patched from
outside (settings, optimiser tags, their ``Replace`` function, a BatchNorm class swap). This
project's side (``--ours-ablation NAME``): patched through its public API only
(``tag_optim``, a BatchNorm class swap), never by editing ``src/``; its settings change with
``--ours-arg``. Every entry says what it changes; ``describe`` prints the chosen ones.
"""

from __future__ import annotations

import types

import torch
from torch import nn

from benchmarks.parity.probes import AuthorsProbe
from benchmarks.parity.sides import Side
from pspikessm.models.backbone import valid_mask
from pspikessm.optim import tag_optim

AUTHORS = {
    "fresh_uniforms": "every spike site draws its own uniforms (theirs: branch-1 input spikes "
    "and both branches' output spikes compare against one shared set)",
    "mask_bn": "post-norm BatchNorm statistics over the valid positions only (theirs: padding "
    "included)",
    "mask_pad_spikes": "spikes zero at padded positions at every spike site (input and "
    "output, both branches), as block.mask_padding: true",
    "c_no_wd": "C (their stored C~) without weight decay (theirs: the global 0.01)",
    "norm_bias_wd": "BatchNorm parameters and biases with the global weight decay (theirs: 0)",
    "dt_exp": "dt = exp(parameter) (theirs: softplus)",
    "one_branch": "one SSM branch per layer (their block with bidirectional: false)",
}
OURS = {
    "mask_bn": "BatchNorm statistics over the valid positions only",
    "c_no_wd": "the kernels' C without weight decay",
}
# Settings that used to be ablations are BlockSettings now: pass them with --ours-arg, e.g.
# --ours-arg=--model.backbone.init_args.block.share_uniforms=false.


def describe(authors: list[str], ours: list[str]) -> dict[str, str]:
    """``ablation.<side>.<name>`` = what it changes; unknown names are errors."""
    out = {}
    for side, names, known in (("authors", authors, AUTHORS), ("ours", ours, OURS)):
        for name in names:
            if name not in known:
                raise SystemExit(f"unknown {side} ablation {name!r}; known: {sorted(known)}")
            out[f"ablation.{side}.{name}"] = known[name]
    return out


def authors_overrides(names: list[str]) -> dict:
    """Keyword arguments of ``parity_setup.authors_side`` that the ablations change."""
    out: dict = {}
    if "dt_exp" in names:
        out["dt_transform"] = "exp"
    if "one_branch" in names:
        out["backbone"] = {"bidirectional": False}
    if "norm_bias_wd" in names:
        out["grouping"] = {"bias_weight_decay": True, "normalization_weight_decay": True}
    if "c_no_wd" in names:

        def retag(model: nn.Module) -> None:
            for module in model.modules():
                if hasattr(module, "l_kernel"):  # their SSMKernelDPLR
                    module.C._optim = {"weight_decay": 0.0}

        out["retag"] = retag
    return out


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm1d on (B, H, L) whose training statistics skip padded positions.

    ``self.mask_source.mask`` is the (B, 1, L) mask of the current batch (set by the wrapped
    forward). Running statistics are updated as torch does (unbiased variance, momentum).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.mask_source.mask
        if not self.training or mask is None:
            return super().forward(x)
        count = mask.sum() * 1.0
        mean = (x * mask).sum(dim=(0, 2)) / count  # (H)
        var = (((x - mean[:, None]) ** 2) * mask).sum(dim=(0, 2)) / count
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * count / (count - 1), self.momentum)
            self.num_batches_tracked += 1
        scale = self.weight / torch.sqrt(var + self.eps)
        return (x - mean[:, None]) * scale[:, None] + self.bias[:, None]


def _with_mask(side: Side) -> types.SimpleNamespace:
    """Wrap ``side.forward`` so that it publishes the batch's mask; returns the holder."""
    holder = types.SimpleNamespace(mask=None)
    forward = side.forward

    def masked_forward(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        holder.mask = valid_mask(lengths, tokens.shape[1], torch.float32)
        return forward(tokens, lengths)

    side.forward = masked_forward
    return holder


def _mask_batchnorm(side: Side) -> None:
    holder = _with_mask(side)
    for module in side.model.modules():
        if type(module) is nn.BatchNorm1d:
            module.__class__ = MaskedBatchNorm1d
            module.mask_source = holder


def _authors_spikes(side: Side, names: list[str]) -> None:
    fresh = ("output", "output_b") if "fresh_uniforms" in names else ()
    holder = _with_mask(side) if "mask_pad_spikes" in names else None
    side.extra["probe"] = AuthorsProbe(
        side.model.backbone, fresh_uniforms=fresh, mask_source=holder
    )


def _rebuild_optimizer(side: Side) -> None:
    configured = side.model.configure_optimizers()
    side.optimizer = configured["optimizer"]
    side.scheduler = configured["lr_scheduler"]["scheduler"]


def apply_ablations(side: Side, names: list[str]) -> Side:
    """``side`` with the named changes applied (before training)."""
    if side.name == "authors":
        if "mask_bn" in names:
            _mask_batchnorm(side)
        if {"fresh_uniforms", "mask_pad_spikes"} & set(names):
            _authors_spikes(side, names)
        return side  # the optimiser ones act through authors_overrides
    if "mask_bn" in names:
        _mask_batchnorm(side)
    if "c_no_wd" in names:
        for name, p in side.model.backbone.named_parameters():
            if name.endswith("kernel.c"):
                tag_optim(p, weight_decay=0.0)
        _rebuild_optimizer(side)
    return side
