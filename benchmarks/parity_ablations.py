"""Named experiments for ``parity.py``: change one behaviour of one model, measure the effect.

Authors' side (``--authors-ablation NAME``): their code is loaded unchanged and patched from
outside (settings, optimiser tags, their ``Replace`` function, a BatchNorm class swap). This
project's side (``--ours-ablation NAME``): patched through its public API only (the
``uniforms`` argument of the backbone, ``tag_optim``, a BatchNorm class swap), never by editing
``src/``. Every entry says what it changes; ``describe`` prints the chosen ones.
"""

from __future__ import annotations

import types

import torch
from parity_probes import AuthorsProbe
from parity_setup import Side
from torch import nn

from pspikessm.models.backbone import valid_mask
from pspikessm.models.dplr_kernel import DPLRSSMKernel, cauchy_conj
from pspikessm.optim import tag_optim

AUTHORS = {
    "fresh_uniforms": "every spike site draws its own uniforms (theirs: branch-1 input spikes "
    "and both branches' output spikes compare against one shared set)",
    "mask_bn": "post-norm BatchNorm statistics over the valid positions only (theirs: padding "
    "included)",
    "mask_pad_spikes": "output spikes zero at padded positions, as this project's",
    "c_no_wd": "C (their stored C~) without weight decay (theirs: the global 0.01)",
    "norm_bias_wd": "BatchNorm parameters and biases with the global weight decay (theirs: 0)",
    "dt_exp": "dt = exp(parameter) (theirs: softplus)",
    "one_branch": "one SSM branch per layer (their block with bidirectional: false)",
}
OURS = {
    "shared_uniforms": "the authors' uniform sharing: one set for the input spikes and every "
    "branch's output spikes (a second set for a second branch's own input spikes)",
    "mask_bn": "BatchNorm statistics over the valid positions only",
    "unmasked_output_spikes": "output spikes not zeroed at padded positions (as the authors')",
    "norm_bias_wd0": "BatchNorm parameters and block biases without weight decay (as the authors')",
    "c_no_wd": "the kernels' C without weight decay",
    "c_tilde": "DPLR kernels store and train S4's C~ = C (I - A^L), L = the longest sequence "
    "(as the authors' code; the kernel at initialisation is unchanged)",
    "b_clip": "the imaginary part of every kernel's initial B clipped to [-2, 2] (S4's "
    "hippo.nplr B_clip=2, in the authors' DPLR and S4D inits)",
}


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


def _shared_uniforms(side: Side) -> None:
    backbone = side.model.backbone
    width = backbone.encoder.embedding_dim

    def forward(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        shape = (tokens.shape[0], width, tokens.shape[1])  # (B H L)
        uniforms = []
        for block in backbone.blocks:
            first = torch.rand(shape, device=tokens.device)
            second = torch.rand(shape, device=tokens.device)
            uniforms.append(
                {
                    name: second if "input" in name and name.endswith("_b") else first
                    for name in block.sampler_names()
                }
            )
        return backbone(tokens, lengths, uniforms=uniforms)

    side.forward = forward


def _unmask_outputs(side: Side) -> None:
    for name, module in side.model.backbone.named_modules():
        if name.rsplit(".", 1)[-1].startswith("output_spikes"):
            plain = module.forward
            module.forward = lambda x, mask=None, uniforms=None, plain=plain: plain(
                x, None, uniforms
            )


class CTildeDPLRKernel(DPLRSSMKernel):
    """This project's DPLR kernel with ``self.c`` holding S4's C~ for length ``l_max``: the
    kernel is evaluated at ``l_max`` from C~ directly and cut to the asked length, as S4's
    ``SSMKernelDPLR`` does (there ``l_max`` is the config's, 2048 for ListOps)."""

    def forward(self, length: int) -> torch.Tensor:
        dt, w, p, b = self.dplr()
        n = self.l_max
        k = torch.arange(n // 2 + 1, device=dt.device, dtype=torch.float64)
        omega = torch.exp(-2j * torch.pi * k / n).to(w.dtype)  # (K)
        scale = (1 + omega) * (dt / 2).unsqueeze(-1)  # (H K)
        c_tilde = self.c_complex  # (C H N/2)
        k00 = cauchy_conj(c_tilde * b, 1 - omega, scale, w)
        k01 = cauchy_conj(c_tilde * p, 1 - omega, scale, w)
        k10 = cauchy_conj(p.conj() * b, 1 - omega, scale, w)
        k11 = cauchy_conj(p.conj() * p, 1 - omega, scale, w)
        k_hat = dt.unsqueeze(-1) * (k00 - scale * k01 * k10 / (1 + scale * k11))  # (C H K)
        return torch.fft.irfft(k_hat, n=n)[..., :length]  # (C H L)


def _c_tilde(side: Side, l_max: int) -> None:
    for module in side.model.modules():
        if type(module) is DPLRSSMKernel:
            with torch.no_grad():
                a_bar, _, c_full = module.discretize()
                power = torch.linalg.matrix_power(a_bar, l_max)  # (H N N)
                c_tilde = c_full - torch.einsum("chn,hnm->chm", c_full, power)
                module.c.copy_(torch.view_as_real(c_tilde[..., : c_full.shape[-1] // 2]))
            module.__class__ = CTildeDPLRKernel
            module.l_max = l_max


def apply_ablations(side: Side, names: list[str], l_max: int = 0) -> Side:
    """``side`` with the named changes applied (before training); ``l_max``: the kernel
    length of ``c_tilde``."""
    if side.name == "authors":
        if "mask_bn" in names:
            _mask_batchnorm(side)
        if {"fresh_uniforms", "mask_pad_spikes"} & set(names):
            _authors_spikes(side, names)
        return side  # the optimiser ones act through authors_overrides
    if "mask_bn" in names:
        _mask_batchnorm(side)
    if "shared_uniforms" in names:
        _shared_uniforms(side)
    if "unmasked_output_spikes" in names:
        _unmask_outputs(side)
    if "c_tilde" in names:
        _c_tilde(side, l_max)
    if "b_clip" in names:
        for name, p in side.model.backbone.named_parameters():
            if name.endswith("kernel.b"):  # (.., N/2, 2): real and imaginary parts
                with torch.no_grad():
                    p[..., 1].clamp_(-2.0, 2.0)
    if "norm_bias_wd0" in names or "c_no_wd" in names:
        for name, p in side.model.backbone.named_parameters():
            in_norm = ".norm." in f".{name}" and "blocks." in name
            if (
                "norm_bias_wd0" in names
                and "blocks." in name
                and (name.endswith("bias") or in_norm)
            ):
                tag_optim(p, weight_decay=0.0)
            if "c_no_wd" in names and name.endswith("kernel.c"):
                tag_optim(p, weight_decay=0.0)
        _rebuild_optimizer(side)
    return side
