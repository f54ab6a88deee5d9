"""One P-SpikeSSM layer (ClampFuse in → spike branches → SpikeMixer → ClampFuse out) and the
parts only it uses: SpikeBranch, ClampFuse, SpikeMixer, ChannelAffine, dropout and norms."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.convolution import SSMConvolution, fft_conv_macs, joint_convolution
from pspikessm.models.neurons import build_neuron, is_spike_source, neuron_step
from pspikessm.models.settings import BlockSettings

#: Per branch, the uniforms of its (input, output) neurons; None lets a neuron draw its own.
Uniforms = list[tuple[torch.Tensor | None, torch.Tensor | None]]


class PSpikeSSMBlock(nn.Module):
    """One P-SpikeSSM layer, as the authors' code computes it.

    1. ``q_j = ClampFuse.drives(x)``: one drive per branch (affine; branch 1 pre-normed);
    2. ``s_j = SpikeBranch_j(q_j)``: input spikes → SSM neurons → output spikes;
    3. ``m = GELU(W [s_1; s_2] + c)`` (:class:`SpikeMixer`, 2H → H with the second branch);
    4. ``x ← ClampFuse(x, m)``: residual sum with tied dropout, post-norm.

    Args:
        d_model: width H.
        settings: :class:`BlockSettings` (default: the paper's block).

    Inputs: ``x`` (B, H, L) residual stream; ``mask`` (B, 1, L) with 1 at valid steps, or
    None; ``uniforms``: optional, per branch the (input, output) uniforms (B, H, L) that fix
    the spikes (:meth:`draw_uniforms`). Outputs: (B, H, L). :meth:`step` runs the same block
    one time step at a time (evaluation mode).
    """

    def __init__(self, d_model: int, settings: BlockSettings | None = None) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        if settings.mixer != "none" and settings.mixer not in ACTIVATIONS:
            raise ValueError(
                f"block.mixer={settings.mixer!r}: expected one of {[*ACTIVATIONS, 'none']}"
            )
        if settings.mixer == "none" and settings.second_branch:
            raise ValueError("block.second_branch needs a mixer (2H → H); got mixer='none'")
        self.share_uniforms = settings.share_uniforms
        self.fuse = ClampFuse(d_model, settings)
        self.branches = nn.ModuleList(
            SpikeBranch(d_model, settings, output_affine=j == 0) for j in range(settings.branches)
        )
        width = d_model * settings.branches
        self.mixer = (
            nn.Identity()
            if settings.mixer == "none"
            else SpikeMixer(width, d_model, settings.mixer)
        )

    def draw_uniforms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Uniforms:
        """Uniforms shaped like ``x`` (float32 at least) for every spike site, shared as
        ``share_uniforms`` says: officially ``u1`` serves branch 1's input spikes and every
        branch's output spikes, ``u2`` branch 2's input spikes (one branch: ``u1`` in, ``u2``
        out); otherwise one tensor per site."""
        dtype = torch.promote_types(x.dtype, torch.float32)

        def uniform() -> torch.Tensor:
            if generator is None:  # rand_like: also under torch.compile's dynamic shapes
                return torch.rand_like(x, dtype=dtype)
            return torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)

        if not self.share_uniforms:
            return [(uniform(), uniform()) for _ in self.branches]
        u1, u2 = uniform(), uniform()
        if len(self.branches) == 1:
            return [(u1, u2)]
        return [(u1, u1), *[(u2, u1) for _ in self.branches[1:]]]

    def _uniforms(self, x: torch.Tensor) -> Uniforms:
        takes_uniforms = getattr(self.branches[0].input_spikes, "takes_uniforms", False)
        # One branch shares nothing (its two sites get two tensors): its neurons draw in
        # place, which costs a third less than comparing with tensors drawn here.
        if self.share_uniforms and takes_uniforms and len(self.branches) > 1:
            return self.draw_uniforms(x)
        return [(None, None) for _ in self.branches]  # each neuron draws its own, in place

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: Uniforms | None = None,
        extent: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``extent`` (1, 1, L): the steps BatchNorm statistics cover (``norms.batch_extent``)."""
        uniforms = self._uniforms(x) if uniforms is None else uniforms
        drives = self.fuse.drives(x, extent)  # per branch (B H L)
        branches = list(zip(self.branches, drives, uniforms, strict=True))
        spikes_in = [br.input_spikes(drive, mask, u) for br, drive, (u, _) in branches]
        membranes = joint_convolution([br.ssm for br in self.branches], spikes_in)
        spikes = [
            br.output(u, mask, pair[1])
            for (br, _, pair), u in zip(branches, membranes, strict=True)
        ]
        return self.fuse(x, self.mixer(torch.cat(spikes, dim=1)), extent)  # (B H L)

    def spike_fan_outs(self) -> list[tuple[nn.Module, int]]:
        """Every spike-emitting neuron of this block with the fan-out of one of its spikes (the
        ACs it triggers): 1 for input spikes (the D skip), the mixer's output width for output
        spikes (0 without a mixer: they enter the residual stream, not counted)."""
        mixer_out = self.mixer.linear.out_features if hasattr(self.mixer, "linear") else 0
        pairs = [(b.input_spikes, 1) for b in self.branches]
        pairs += [(b.output_spikes, mixer_out) for b in self.branches]
        return [(neuron, fan_out) for neuron, fan_out in pairs if is_spike_source(neuron)]

    def operation_counts(self, lengths: torch.Tensor) -> dict[str, float]:
        """MACs of this block over sequences of ``lengths`` (B,) valid steps, by the energy
        estimate's rules (:mod:`pspikessm.callbacks.energy_counts`): ``mac`` in this network
        (real-valued operations, plus the spike-fed ones where the neuron kind feeds real
        values) and ``dense_mac`` in the same network without spikes. ACs are the spikes of
        :meth:`spike_fan_outs` times their fan-outs, counted where the spikes are seen."""
        width, branches = self.fuse.affines[0].scale.numel(), len(self.branches)
        steps = float(lengths.sum())
        affines = sum(isinstance(m, ChannelAffine) for m in self.modules())
        per_step = affines * width + norm_macs_per_step(self.fuse.norm, width)
        conv = sum(fft_conv_macs(int(n)) for n in lengths.tolist() if n > 0)
        real = per_step * steps + branches * width * conv
        skips = steps * branches * width  # D s_in, fed real values
        mixer = skips * (self.mixer.linear.out_features if hasattr(self.mixer, "linear") else 0)
        spiking_in = is_spike_source(self.branches[0].input_spikes)
        spiking_out = is_spike_source(self.branches[0].output_spikes)
        fed_real = (0.0 if spiking_in else skips) + (0.0 if spiking_out else mixer)
        return {"mac": real + fed_real, "dense_mac": real + skips + mixer}

    def initial_state(self, batch: int) -> list[dict[str, Any]]:
        """Step mode: the block's state at t = 0. Needs evaluation mode (batch statistics and
        dropout act across time steps)."""
        if self.training:
            raise RuntimeError("step mode runs in evaluation mode; call model.eval() first")
        return [branch.initial_state(batch) for branch in self.branches]

    def step(
        self,
        x: torch.Tensor,
        state: list[dict[str, Any]],
        mask: torch.Tensor | None = None,
        uniforms: Uniforms | None = None,
    ) -> torch.Tensor:
        """:meth:`forward` at one step: ``x`` (B, H, 1), ``mask`` (B, 1, 1), uniforms (B, H, 1)
        each → (B, H, 1). Updates ``state`` in place."""
        uniforms = self._uniforms(x) if uniforms is None else uniforms
        drives = self.fuse.drives(x)
        spikes = [
            branch.step(drive, branch_state, mask, *pair)
            for branch, drive, branch_state, pair in zip(
                self.branches, drives, state, uniforms, strict=True
            )
        ]
        return self.fuse(x, self.mixer(torch.cat(spikes, dim=1)))


# SpikeBranch: input spikes → SSM neurons → output spikes, one branch of a block.


class SpikeBranch(nn.Module):
    """One branch of a P-SpikeSSM block, as the official code computes it:

    1. ``s_in = neuron(q)``: input spikes from the drive ``q`` (:class:`ClampFuse`);
    2. ``u = K̄ * s_in + D s_in`` (:class:`SSMConvolution`), then dropout (untied);
    3. ``p = a_out ⊙ drop(GELU(u)) + b_out`` (tied dropout; branch 2 has no output affine);
    4. ``s_out = neuron(p)``: output spikes.

    Args:
        d_model: width H.
        settings: the block's settings; read: ``neuron``, ``dropout``,
            ``tie_dropout``, ``mask_output_padding``, and what
            :class:`SSMConvolution` reads.
        output_affine: apply ``a_out ⊙ · + b_out`` before the output neuron.

    Inputs: ``drive`` (B, H, L); ``mask`` (B, 1, L) with 1 at valid steps, or None;
    ``uniforms_in``, ``uniforms_out``: (B, H, L) uniforms for the two neurons, or None (they
    draw their own). Outputs: output spikes (B, H, L). :meth:`step` is the same computation
    one time step at a time.
    """

    def __init__(self, d_model: int, settings: BlockSettings, output_affine: bool = True) -> None:
        super().__init__()
        self.input_spikes = build_neuron(settings.neuron, d_model)
        self.ssm = SSMConvolution(d_model, settings)
        self.dropout = make_dropout(settings.dropout, tied=False)
        self.activation_dropout = make_dropout(settings.dropout, tied=settings.tie_dropout)
        self.output_affine = ChannelAffine(d_model) if output_affine else nn.Identity()
        self.output_spikes = build_neuron(settings.neuron, d_model)
        self.mask_outputs = settings.mask_output_padding

    def forward(
        self,
        drive: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms_in: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        spikes_in = self.input_spikes(drive, mask, uniforms_in)  # (B H L)
        return self.output(self.ssm(spikes_in), mask, uniforms_out)

    def output(
        self,
        membrane: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Steps 2 (the dropout) to 4 from the SSM's output ``membrane`` (B, H, L): the block
        runs its branches' SSMs as one convolution (:func:`convolution.joint_convolution`)."""
        membrane = self.dropout(membrane)  # (B H L)
        drive_out = self.output_affine(self.activation_dropout(F.gelu(membrane)))
        mask_out = mask if self.mask_outputs else None
        return self.output_spikes(drive_out, mask_out, uniforms_out)  # (B H L)

    def initial_state(self, batch: int) -> dict[str, Any]:
        """Step mode: the state at t = 0 (the SSM recurrence; neurons start at rest)."""
        return {"ssm": self.ssm.initial_state(batch)}

    def step(
        self,
        drive: torch.Tensor,
        state: dict[str, Any],
        mask: torch.Tensor | None = None,
        uniforms_in: torch.Tensor | None = None,
        uniforms_out: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """:meth:`forward` at one step: ``drive`` (B, H, 1) → (B, H, 1); updates ``state``."""
        spikes_in = neuron_step(self.input_spikes, drive, state, "input", mask, uniforms_in)
        membrane, state["ssm"] = self.ssm.step(spikes_in, state["ssm"])
        membrane = self.dropout(membrane)
        drive_out = self.output_affine(self.activation_dropout(F.gelu(membrane)))
        mask_out = mask if self.mask_outputs else None
        return neuron_step(self.output_spikes, drive_out, state, "output", mask_out, uniforms_out)


# ClampFuse: where a P-SpikeSSM block meets the real-valued residual stream.


class ClampFuse(nn.Module):
    """In: the residual stream → each branch's drive. Out: mixed spikes → the residual stream.

    In (:meth:`drives`): branch ``j``'s drive is ``q_j = a_j ⊙ x + b_j``; in pre-norm models
    branch 1's drive is normalised (branch 2's never is, as in the official code). Each
    branch's input neuron clamps its drive to [0, 1] and samples the input spikes.
    Out (:meth:`forward`): ``x + drop(m)``, or ``m`` without the residual (no dropout then,
    as the official code), then the norm in post-norm models.

    Args:
        d_model: width H.
        settings: the block's settings; read: ``second_branch`` (how many drives), ``norm``,
            ``prenorm``, ``residual``, ``dropout``, and ``tie_dropout``.

    Parameters: ``affines.{j}`` (one ChannelAffine per branch), ``pre_norm`` or ``post_norm``
    (the other is an identity).
    """

    def __init__(self, d_model: int, settings: BlockSettings) -> None:
        super().__init__()
        self.residual = settings.residual
        self.affines = nn.ModuleList(ChannelAffine(d_model) for _ in range(settings.branches))
        norm = make_norm(settings.norm, d_model)
        self.pre_norm = norm if settings.prenorm else nn.Identity()
        self.post_norm = nn.Identity() if settings.prenorm else norm
        self.dropout = make_dropout(settings.dropout, settings.tie_dropout)

    def drives(self, x: torch.Tensor, extent: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``x`` (B, H, L) → one drive (B, H, L) per branch; ``extent`` (1, 1, L) or None:
        the steps a BatchNorm's statistics cover (:func:`apply_norm`)."""
        drives = [affine(x) for affine in self.affines]
        drives[0] = apply_norm(self.pre_norm, drives[0], extent)
        return drives

    def forward(
        self, x: torch.Tensor, mixed: torch.Tensor, extent: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Residual stream ``x`` and the block's mixed output (both (B, H, L)) → new stream."""
        out = x + self.dropout(mixed) if self.residual else mixed
        return apply_norm(self.post_norm, out, extent)

    @property
    def norm(self) -> nn.Module:
        """The block's one normalisation, wherever it sits."""
        return self.post_norm if isinstance(self.pre_norm, nn.Identity) else self.pre_norm


# SpikeMixer: a dense map across the neurons of a layer, fed by binary spikes.


ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


class SpikeMixer(nn.Module):
    """``m = GELU(W s + c)`` over the neuron dimension of (B, H_in, L) spikes.

    With binary ``s``, ``W s`` sums selected columns of W: accumulates, not multiplies.

    Args:
        d_in, d_out: neurons in and out (``d_out`` defaults to ``d_in``).
        activation: ``gelu`` (the paper's) or ``relu`` (its ablation).

    Inputs: ``s`` (B, H_in, L). Outputs: ``m`` (B, H_out, L).
    """

    def __init__(self, d_in: int, d_out: int | None = None, activation: str = "gelu") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown mixer activation {activation!r}; expected one of {sorted(ACTIVATIONS)}"
            )
        self.activation = activation
        self.linear = nn.Linear(d_in, d_out or d_in)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        # One batched GEMM on the (B, H, L) layout with the bias fused: torch.matmul would
        # transpose the spikes to (B L, H) and back.
        weight = self.linear.weight.expand(spikes.shape[0], -1, -1)  # (B H_out H_in)
        mixed = torch.baddbmm(self.linear.bias.unsqueeze(-1), weight, spikes)  # (B H_out L)
        return ACTIVATIONS[self.activation](mixed)


# Per-neuron affine map ``a ⊙ x + b`` on (B, H, L) tensors.


class ChannelAffine(nn.Module):
    """``a ⊙ x + b`` with one (a, b) pair per neuron, starting as the identity (a = 1, b = 0).

    Args:
        d_model: neurons H.

    Inputs: ``x`` (B, H, L). Outputs: (B, H, L).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(d_model))
        self.shift = nn.Parameter(torch.zeros(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift.unsqueeze(-1), self.scale.unsqueeze(-1), x)


# Dropout on (B, H, L) tensors, with one mask per time step or one per example and neuron.


def make_dropout(rate: float, tied: bool) -> nn.Module:
    """``nn.Dropout`` (a fresh mask at every step) or, ``tied``, ``nn.Dropout1d``: one mask per
    (example, neuron), the same at every time step (the official ``tie_dropout``, S4's
    ``DropoutNd``); identity when ``rate`` is 0."""
    if rate == 0.0:
        return nn.Identity()
    return nn.Dropout1d(rate) if tied else nn.Dropout(rate)


# Normalisation over the channel dimension of (B, H, L) tensors.


NORMS = ("batch", "layer", "none")


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over H for inputs laid out as (B, H, L)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.layer_norm(x.transpose(1, 2), self.normalized_shape, self.weight, self.bias, self.eps)
        return y.transpose(1, 2)


def make_norm(kind: str, d_model: int) -> nn.Module:
    """``batch`` (BatchNorm1d), ``layer`` (LayerNorm over H) or ``none``, all on (B, H, L)."""
    if kind == "batch":
        return nn.BatchNorm1d(d_model)
    if kind == "layer":
        return ChannelLayerNorm(d_model)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORMS}")


def norm_macs_per_step(norm: nn.Module, width: int) -> int:
    """MACs per time step of a normalisation over ``width`` channels: BatchNorm ``width`` (at
    inference a per-channel affine), LayerNorm ``3·width`` (mean, variance, scale), none 0."""
    if isinstance(norm, nn.BatchNorm1d):
        return width
    if isinstance(norm, ChannelLayerNorm | nn.LayerNorm):
        return 3 * width
    if isinstance(norm, nn.Identity):
        return 0
    raise TypeError(f"no energy counting rule for normalisation {type(norm).__name__}")


def batch_extent(lengths: torch.Tensor | None, length: int) -> torch.Tensor | None:
    """(1, 1, L): 1 at the steps ``t < max(lengths)`` (the batch before any bucket padding,
    :func:`~pspikessm.data.collate.bucket_length`), or None where that is every step.

    BatchNorm's training statistics cover these steps only, so padding a batch beyond its
    longest sequence changes no result. Eager on CPU the check is free and the plain
    BatchNorm runs when nothing is padded; on a GPU or under ``torch.compile`` the check would
    wait for the device (or break the graph), so the extent is always applied there.
    """
    if lengths is None:
        return None
    if not (lengths.is_cuda or torch.compiler.is_compiling()) and int(lengths.max()) >= length:
        return None
    steps = torch.arange(length, device=lengths.device)
    return (steps < lengths.max()).view(1, 1, -1)


def apply_norm(norm: nn.Module, x: torch.Tensor, extent: torch.Tensor | None) -> torch.Tensor:
    """``norm(x)`` for ``x`` (B, H, L), with a training BatchNorm's statistics (and running
    statistics) taken over the steps of ``extent`` (1, 1, L) only (:func:`batch_extent`)."""
    if extent is None or not (isinstance(norm, nn.BatchNorm1d) and norm.training):
        return norm(x)
    weights = extent.to(x.dtype)
    count = weights.sum() * x.shape[0]
    mean = (x * weights).sum(dim=(0, 2)) / count  # (H)
    var = ((x - mean.view(1, -1, 1)).square() * weights).sum(dim=(0, 2)) / count  # (H)
    if norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        momentum = norm.momentum
        if momentum is None:  # cumulative average, as BatchNorm1d's
            momentum = 1.0 / norm.num_batches_tracked
        with torch.no_grad():
            unbiased = var * count / (count - 1).clamp_min(1.0)
            norm.running_mean.lerp_(mean.detach(), momentum)
            norm.running_var.lerp_(unbiased.detach(), momentum)
    scale = torch.rsqrt(var + norm.eps)  # (H)
    if norm.weight is not None:
        scale = scale * norm.weight
    shift = -mean * scale if norm.bias is None else norm.bias - mean * scale
    return torch.addcmul(shift.view(1, -1, 1), scale.view(1, -1, 1), x)
