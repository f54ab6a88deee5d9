"""The paper's block against a short, independent implementation written from the spec
(shared/reference/model.md, "Details of the official code"): the official second branch,
the official sharing of uniforms, post-/pre-norm, the residual; forward and gradients.

The spec below uses plain tensor operations on the block's own parameters; the SSM kernel
values come from the block's kernel module (the kernels are tested against their dense
recurrences in test_dplr_kernel.py / test_diagonal_kernel.py), and the convolution is an
explicit Toeplitz product, not an FFT.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspikessm.models import BlockSettings, PSpikeSSMBlock
from pspikessm.models.block import BranchUniforms
from pspikessm.models.layers import make_dropout
from pspikessm.models.neurons.pspike import SpikeSampler


def spike(drive: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """``1[u < a x + b]`` forward, the gradient of ``clamp(·, 0, 1)`` backward (Replace)."""
    probability = drive.clamp(0.0, 1.0)
    return probability + ((uniforms < drive).to(drive.dtype) - probability).detach()


def convolve(spikes: torch.Tensor, ssm) -> torch.Tensor:
    """``u[t] = Σ_j K[j] s[t-j] + Σ_j K_anti[j] s[t+1+j] + D s[t]``, one Toeplitz matrix
    per neuron (two-sided kernels as in S4's FFTConv); spikes (B, H, L)."""
    length = spikes.shape[-1]
    kernels = ssm.kernel(length)  # (C H L)
    lag = torch.arange(length).view(-1, 1) - torch.arange(length).view(1, -1)  # t - s
    causal = torch.where(lag >= 0, kernels[0][:, lag.clamp(min=0)], 0.0)  # (H L L)
    toeplitz = causal
    if kernels.shape[0] == 2:
        anti = kernels[1][:, (-lag - 1).clamp(min=0)]
        toeplitz = toeplitz + torch.where(lag < 0, anti, 0.0)
    u = torch.einsum("hts,bhs->bht", toeplitz, spikes)
    return u + ssm.d.view(1, -1, 1) * spikes


def batch_norm(x: torch.Tensor, norm) -> torch.Tensor:
    """Training-mode BatchNorm over (B, L) per neuron, with the module's affine."""
    mean = x.mean(dim=(0, 2), keepdim=True)
    var = x.var(dim=(0, 2), unbiased=False, keepdim=True)
    normed = (x - mean) / torch.sqrt(var + norm.eps)
    return normed * norm.weight.view(1, -1, 1) + norm.bias.view(1, -1, 1)


def spec_block(block: PSpikeSSMBlock, x: torch.Tensor, u1, u2, prenorm: bool) -> torch.Tensor:
    """The official SequenceResidualBlock.forward with two branches, dropout 0, residual."""
    entry1, entry2 = block.fuse.affines
    norm = block.fuse.pre_norm if prenorm else block.fuse.post_norm
    branch1, branch2 = block.branches
    y = entry1.scale.view(1, -1, 1) * x + entry1.shift.view(1, -1, 1)  # inp_a x + inp_b
    if prenorm:
        y = batch_norm(y, norm)
    y = spike(y, u1)  # random_uniform
    y_for = F.gelu(convolve(y, branch1.ssm))  # S4Block: FFTConv, GELU
    out_affine = branch1.output_affine
    y_for = y_for * out_affine.scale.view(1, -1, 1) + out_affine.shift.view(1, -1, 1)
    y = entry2.scale.view(1, -1, 1) * x + entry2.shift.view(1, -1, 1)  # inp2: no norm
    y = spike(y, u2)  # random_uniform_2
    y_rev = F.gelu(convolve(y, branch2.ssm))  # reverse_layer: no output affine
    y_for = spike(y_for, u1)  # both output spikes from random_uniform
    y_rev = spike(y_rev, u1)
    linear = block.mixer.linear  # bidirectional_linear: 2H -> H, then GELU
    spikes = torch.cat([y_for, y_rev], dim=1)  # (B 2H L)
    mixed = F.gelu(torch.einsum("oi,bil->bol", linear.weight, spikes) + linear.bias.view(1, -1, 1))
    y = x + mixed  # residual (dropout 0)
    return y if prenorm else batch_norm(y, norm)


@pytest.mark.parametrize("prenorm", [False, True])
def test_two_branch_block_equals_the_spec(prenorm: bool) -> None:
    torch.manual_seed(0)
    settings = BlockSettings(d_state=8, two_sided=True, prenorm=prenorm, dt_min=0.01)
    block = PSpikeSSMBlock(6, settings).double()
    with torch.no_grad():  # move every parameter off its init so each one matters
        for parameter in block.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(3, 6, 20, dtype=torch.float64) * 0.5 + 0.5
    u1, u2 = (torch.rand(3, 6, 20, dtype=torch.float64) for _ in range(2))

    ours = block(x, None, [BranchUniforms(u1, u1), BranchUniforms(u2, u1)])
    spec = spec_block(block, x, u1, u2, prenorm)
    torch.testing.assert_close(ours, spec, rtol=1e-9, atol=1e-9)
    assert (ours != x).double().mean() > 0.05  # the block did something

    weights = torch.randn_like(ours)
    parameters = list(block.parameters())
    ours_grads = torch.autograd.grad((ours * weights).sum(), parameters, allow_unused=True)
    spec_grads = torch.autograd.grad((spec * weights).sum(), parameters, allow_unused=True)
    names = [name for name, _ in block.named_parameters()]
    for name, g_ours, g_spec in zip(names, ours_grads, spec_grads, strict=True):
        assert g_ours is not None and g_spec is not None, name
        torch.testing.assert_close(g_ours, g_spec, rtol=1e-8, atol=1e-9, msg=name)


def test_official_uniform_sharing() -> None:
    """u1 serves branch 1's input spikes and both output spikes, u2 branch 2's input spikes;
    with one branch input and output differ; ``share_uniforms=False`` gives every site its own."""
    x = torch.zeros(2, 4, 5)
    two = PSpikeSSMBlock(4, BlockSettings(d_state=4)).draw_uniforms(x)
    (in1, out1), (in2, out2) = two
    assert in1 is out1 is out2 and in2 is not in1 and not torch.equal(in1, in2)
    ((single_in, single_out),) = PSpikeSSMBlock(
        4, BlockSettings(d_state=4, second_branch=False)
    ).draw_uniforms(x)
    assert not torch.equal(single_in, single_out)
    independent = PSpikeSSMBlock(4, BlockSettings(d_state=4, share_uniforms=False))
    draws = [u for pair in independent.draw_uniforms(x) for u in pair]
    assert len({id(u) for u in draws}) == 4


def test_only_blocks_that_share_uniforms_draw_them_up_front() -> None:
    """Two branches: every neuron gets the block's shared tensors. One branch (nothing to
    share): each neuron draws its own uniforms in place."""
    for second_branch, expect_given in ((True, True), (False, False)):
        block = PSpikeSSMBlock(4, BlockSettings(d_state=4, second_branch=second_branch))
        given = []
        for module in block.modules():
            if isinstance(module, SpikeSampler):
                module.register_forward_hook(
                    lambda m, args, out, given=given: given.append(args[2])
                )
        block.train()(torch.rand(2, 4, 16))
        assert len(given) == 2 * len(block.branches)
        assert all((u is not None) == expect_given for u in given)


def test_shared_uniforms_correlate_input_and_output_spikes() -> None:
    """Branch 1's input and output spikes share their uniform at each (example, neuron,
    step): wherever the output probability is at least the input one, an input spike implies
    an output spike. Independent draws break that."""
    for shared in (True, False):
        torch.manual_seed(0)
        block = PSpikeSSMBlock(4, BlockSettings(d_state=4, share_uniforms=shared)).train()
        seen = {}
        for name in ("input_spikes", "output_spikes"):
            module = getattr(block.branches[0], name)
            module.register_forward_hook(
                lambda m, args, out, n=name, seen=seen: seen.update({n: (args[0].clamp(0, 1), out)})
            )
        block(torch.rand(8, 4, 64))
        (p_in, s_in), (p_out, s_out) = seen["input_spikes"], seen["output_spikes"]
        implied = (p_out >= p_in) & (s_in == 1)
        assert implied.sum() > 50
        assert torch.all(s_out[implied] == 1) == shared


def test_tied_dropout_masks_are_constant_over_time() -> None:
    torch.manual_seed(0)
    tied = make_dropout(0.5, tied=True).train()
    out = tied(torch.ones(16, 8, 50))
    assert torch.equal(out, out[..., :1].expand_as(out))  # one mask per (example, neuron)
    assert 0.3 < (out[..., 0] == 0).double().mean() < 0.7
    untied = make_dropout(0.5, tied=False).train()(torch.ones(16, 8, 50))
    assert not torch.equal(untied, untied[..., :1].expand_as(untied))


def test_dropout_sits_where_the_official_code_puts_it() -> None:
    """Untied on u, tied after the GELU and before the residual sum; no residual, no dropout."""
    block = PSpikeSSMBlock(4, BlockSettings(d_state=4, dropout=0.1))
    for branch in block.branches:
        assert type(branch.dropout) is torch.nn.Dropout
        assert type(branch.activation_dropout) is torch.nn.Dropout1d
    assert type(block.fuse.dropout) is torch.nn.Dropout1d
    untied = PSpikeSSMBlock(4, BlockSettings(d_state=4, dropout=0.1, tie_dropout=False))
    assert type(untied.fuse.dropout) is torch.nn.Dropout
    no_residual = PSpikeSSMBlock(
        4, BlockSettings(d_state=4, dropout=0.9, residual=False, prenorm=True)
    ).train()
    mixed = torch.rand(2, 4, 10)
    assert torch.equal(no_residual.fuse(torch.zeros_like(mixed), mixed), mixed)


def test_architecture_leaves_out_exactly_the_fields_marked_training_only():
    settings = BlockSettings()
    architecture = settings.architecture()
    assert {"kernel", "neuron", "d_state", "mask_output_padding"} <= set(architecture)
    assert not {"dropout", "ssm_lr", "dt_min", "share_uniforms"} & set(architecture)
    retrained = BlockSettings(dropout=0.3, ssm_lr=0.1, dt_min=0.01, share_uniforms=False)
    assert retrained.architecture() == architecture
    per_neuron = BlockSettings(kernel={"name": "dplr", "init_args": {"shared": False}})
    assert per_neuron.architecture()["kernel"] == {"name": "dplr", "init_args": {"shared": False}}
