"""One P-SpikeSSM layer (ClampFuse in → spike branches → SpikeMixer → ClampFuse out): the
block, its SpikeBranch and ClampFuse (the layers they use: :mod:`.layers`, norms: :mod:`.norms`).

Notation: ``z`` are uniforms in [0, 1) (a spike is ``1[z < p]``), ``u`` the SSM neurons'
membranes (the monitors' ``layer{i}/u``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pspikessm.models.convolution import JointSSMConvolution, SSMConvolution, compute_dtype
from pspikessm.models.layers import ChannelAffine, SpikeMixer, make_dropout
from pspikessm.models.neurons import build_neuron, neuron_step
from pspikessm.models.norms import apply_norm, make_norm
from pspikessm.models.settings import BlockSettings


class BranchUniforms(NamedTuple):
    """The uniforms (B, H, L) of one branch's input and output spikes; None: the neuron draws
    its own."""

    input: torch.Tensor | None
    output: torch.Tensor | None


#: A block's uniforms: one :class:`BranchUniforms` per branch.
Uniforms = list[BranchUniforms]
#: Every neuron of the branch draws its own.
OWN_DRAWS = BranchUniforms(None, None)


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
    None; ``uniforms``: optional, the :data:`Uniforms` that fix the spikes
    (:meth:`draw_uniforms`); ``extent`` (1, 1, L): the steps BatchNorm statistics cover
    (:func:`~pspikessm.models.norms.batch_extent`), or None; ``kernel`` (ΣH, K): the branches'
    SSM kernels computed already (:class:`~pspikessm.models.kernel_bank.KernelBank`), or None:
    the block computes its own. Outputs: (B, H, L). :meth:`step`
    runs the same block one time step at a time (evaluation mode).
    """

    def __init__(self, d_model: int, settings: BlockSettings | None = None) -> None:
        super().__init__()
        settings = settings or BlockSettings()
        self.share_uniforms = settings.share_uniforms
        self.fuse = ClampFuse(d_model, settings)
        self.branches = nn.ModuleList(
            SpikeBranch(d_model, settings, output_affine=j == 0) for j in range(settings.branches)
        )
        self.ssm = JointSSMConvolution([branch.ssm for branch in self.branches])
        width = d_model * settings.branches
        mixer = settings.mixer
        self.mixer = nn.Identity() if mixer == "none" else SpikeMixer(width, d_model, mixer)

    def draw_uniforms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Uniforms:
        """Uniforms shaped like ``x`` (float32 at least) for every spike site, shared as
        ``share_uniforms`` says: officially ``z1`` serves branch 1's input spikes and every
        branch's output spikes, ``z2`` branch 2's input spikes (one branch: ``z1`` in, ``z2``
        out); otherwise one tensor per site."""
        dtype = compute_dtype(x)

        def uniform() -> torch.Tensor:
            if generator is None:  # rand_like: also under torch.compile's dynamic shapes
                return torch.rand_like(x, dtype=dtype)
            return torch.rand(x.shape, generator=generator, dtype=dtype, device=x.device)

        if not self.share_uniforms:
            return [BranchUniforms(uniform(), uniform()) for _ in self.branches]
        z1, z2 = uniform(), uniform()
        if len(self.branches) == 1:
            return [BranchUniforms(z1, z2)]
        return [BranchUniforms(z1, z1), *[BranchUniforms(z2, z1) for _ in self.branches[1:]]]

    def shared_uniforms(self, x: torch.Tensor) -> Uniforms:
        """:meth:`draw_uniforms` where sites share them; else None at every site (each neuron
        draws its own, in place: a third cheaper than comparing with tensors drawn here)."""
        takes_uniforms = getattr(self.branches[0].input_spikes, "takes_uniforms", False)
        if self.share_uniforms and takes_uniforms and len(self.branches) > 1:
            return self.draw_uniforms(x)
        return [OWN_DRAWS for _ in self.branches]

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        uniforms: Uniforms | None = None,
        extent: torch.Tensor | None = None,
        kernel: torch.Tensor | None = None,
    ) -> torch.Tensor:
        uniforms = self.shared_uniforms(x) if uniforms is None else uniforms
        drives = self.fuse.drives(x, extent)  # per branch (B H L)
        inputs = zip(self.branches, drives, uniforms, strict=True)
        spikes_in = [branch.input_spikes(drive, mask, z.input) for branch, drive, z in inputs]
        membranes = self.ssm(spikes_in, kernel)  # per branch (B H L): all branches at once
        outputs = zip(self.branches, membranes, uniforms, strict=True)
        spikes_out = [branch.output(membrane, mask, z.output) for branch, membrane, z in outputs]
        return self.fuse(x, self.mixer(joined(spikes_out)), extent)  # (B H L)

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
        uniforms = self.shared_uniforms(x) if uniforms is None else uniforms
        branches = zip(self.branches, self.fuse.drives(x), state, uniforms, strict=True)
        spikes = [branch.step(drive, at, mask, z) for branch, drive, at, z in branches]
        return self.fuse(x, self.mixer(joined(spikes)))


def joined(spikes: list[torch.Tensor]) -> torch.Tensor:
    """The branches' spikes (B, H, L) each → (B, ΣH, L); one branch's as they are (a cat of
    one tensor would be a copy)."""
    return spikes[0] if len(spikes) == 1 else torch.cat(spikes, dim=1)


class SpikeBranch(nn.Module):
    """One branch of a P-SpikeSSM block, as the official code computes it:

    1. ``s_in = neuron(q)``: input spikes from the drive ``q`` (:class:`ClampFuse`);
    2. ``u = K̄ * s_in + D s_in`` (:class:`SSMConvolution`), then dropout (untied);
    3. ``p = a_out ⊙ drop(GELU(u)) + b_out`` (tied dropout; branch 2 has no output affine);
    4. ``s_out = neuron(p)``: output spikes.

    The block runs step 1 (``input_spikes``), then every branch's step 2 as one convolution
    (:class:`~pspikessm.models.convolution.JointSSMConvolution`), then steps 3-4
    (:meth:`output`); :meth:`step` runs all four one time step at a time.

    Args:
        d_model: width H.
        settings: the block's settings; read: ``neuron``, ``dropout``, ``tie_dropout``,
            ``mask_output_padding``, and what :class:`SSMConvolution` reads.
        output_affine: apply ``a_out ⊙ · + b_out`` before the output neuron.
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

    def output(
        self, membrane: torch.Tensor, mask: torch.Tensor | None, uniforms: torch.Tensor | None
    ) -> torch.Tensor:
        """Output spikes (B, H, L) from the SSM's ``membrane`` u (B, H, L): the dropout of
        step 2, steps 3 and 4; ``mask`` (B, 1, L) or None; ``uniforms`` (B, H, L) or None."""
        drive_out = self.output_affine(self.activation_dropout(F.gelu(self.dropout(membrane))))
        return self.output_spikes(drive_out, mask if self.mask_outputs else None, uniforms)

    def initial_state(self, batch: int) -> dict[str, Any]:
        """Step mode: the state at t = 0 (the SSM recurrence; neurons start at rest)."""
        return {"ssm": self.ssm.initial_state(batch)}

    def step(
        self,
        drive: torch.Tensor,
        state: dict[str, Any],
        mask: torch.Tensor | None = None,
        uniforms: BranchUniforms = OWN_DRAWS,
    ) -> torch.Tensor:
        """Steps 1-4 at one time step: ``drive`` (B, H, 1) → output spikes (B, H, 1); updates
        ``state``."""
        spikes_in = neuron_step(self.input_spikes, drive, state, "input", mask, uniforms.input)
        membrane, state["ssm"] = self.ssm.step(spikes_in, state["ssm"])
        drive_out = self.output_affine(self.activation_dropout(F.gelu(self.dropout(membrane))))
        mask_out = mask if self.mask_outputs else None
        return neuron_step(
            self.output_spikes, drive_out, state, "output", mask_out, uniforms.output
        )


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
