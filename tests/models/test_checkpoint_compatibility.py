"""Checkpoints of the model before the block was split up (issue 29) load into today's model
and compute the same logits; the block equals a plain reference of the old joint computation.

``fixtures/main_checkpoints.pt`` holds tiny models' state_dicts, inputs, uniforms and float64
logits written by commit 6f993eb (``fixtures/make_main_checkpoints.py``): parameter names,
shapes, the sharing of uniforms and every number must be unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from pspikessm.models import BlockSettings, PSpikeSSM, PSpikeSSMBlock
from pspikessm.models.block import BranchUniforms
from pspikessm.models.norms import apply_norm

FIXTURE = Path(__file__).with_name("fixtures") / "main_checkpoints.pt"
MODELS = torch.load(FIXTURE, weights_only=True)


def old_model(name: str) -> PSpikeSSM:
    """Today's model of the fixture's settings, holding the fixture's state_dict (strict)."""
    arguments = dict(MODELS[name]["arguments"])
    block = BlockSettings(**arguments.pop("block"))
    model = PSpikeSSM(block=block, **arguments).double()
    model.load_state_dict(MODELS[name]["state_dict"], strict=True)
    return model


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_an_old_state_dict_loads_and_computes_the_same_logits(name: str, mode: str) -> None:
    saved = MODELS[name]
    model = old_model(name).train(mode == "train")
    assert list(model.state_dict()) == list(saved["state_dict"])  # same names, same order
    uniforms = [[BranchUniforms(*branch) for branch in block] for block in saved["uniforms"]]
    with torch.no_grad():
        logits = model(saved["inputs"], saved["lengths"], uniforms)
    torch.testing.assert_close(logits, saved["logits"][mode], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_uniforms_are_drawn_and_shared_as_before(name: str) -> None:
    """The same generator gives the same uniforms, shared between the same sites (the draws
    follow the inputs' draw, as the fixture's script made them)."""
    saved = MODELS[name]
    generator = torch.Generator().manual_seed(1)
    for other in MODELS:  # the script's order of draws
        shape = MODELS[other]["inputs"]
        if shape.dtype == torch.int64:
            torch.randint(0, 7, shape.shape, generator=generator)
        else:
            torch.randn(shape.shape, generator=generator, dtype=torch.float64)
        drawn = old_model(other).draw_uniforms(3, 12, generator, dtype=torch.float64)
        if other == name:
            break
    for block, saved_block in zip(drawn, saved["uniforms"], strict=True):
        for branch, saved_branch in zip(block, saved_block, strict=True):
            for z, saved_z in zip(branch, saved_branch, strict=True):
                assert torch.equal(z, saved_z)
        ids = [id(z) for branch in block for z in branch]
        saved_ids = [id(z) for branch in saved_block for z in branch]
        same = [[a == b for b in ids] for a in ids]
        assert same == [[a == b for b in saved_ids] for a in saved_ids]  # the same sharing


def old_joint_block(block: PSpikeSSMBlock, x, mask, uniforms: list[tuple]) -> torch.Tensor:
    """The block as commit 6f993eb wrote it, plainly: per branch input spikes, the SSM (the
    plain FFT convolution with the skip added apart), dropout, GELU, output affine, output
    spikes; then the mixer, the residual and the norm. ``uniforms``: (input, output) pairs."""
    fuse = block.fuse
    drives = [affine(x) for affine in fuse.affines]
    drives[0] = apply_norm(fuse.pre_norm, drives[0], None)
    spikes = []
    for branch, drive, (z_in, z_out) in zip(block.branches, drives, uniforms, strict=True):
        spikes_in = branch.input_spikes(drive, mask, z_in)
        membrane = branch.ssm.forward_reference(spikes_in)
        drive_out = branch.output_affine(F.gelu(membrane))  # dropout 0
        spikes.append(branch.output_spikes(drive_out, mask, z_out))
    out = x + block.mixer(torch.cat(spikes, dim=1))
    return apply_norm(fuse.post_norm, out, None)


@pytest.mark.parametrize("second_branch", [True, False])
def test_the_block_equals_the_old_per_branch_computation(second_branch: bool) -> None:
    torch.manual_seed(0)
    settings = BlockSettings(d_state=4, two_sided=True, second_branch=second_branch)
    block = PSpikeSSMBlock(6, settings).double().train()
    x = torch.rand(3, 6, 17, dtype=torch.float64)
    mask = (torch.arange(17) < torch.tensor([17, 11, 6]).unsqueeze(1)).unsqueeze(1).double()
    uniforms = block.draw_uniforms(x)
    ours = block(x, mask, uniforms)
    reference = old_joint_block(block, x, mask, [tuple(branch) for branch in uniforms])
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=1e-12)
