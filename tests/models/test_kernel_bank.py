"""The kernel bank (every layer's and branch's SSM kernel in one computation) gives what each
branch's own kernel gives: outputs, gradients and spikes, in float64 with the same uniforms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pspikessm.models import PSpikeSSM, convolution, spike_emitters
from pspikessm.models.kernels.diagonal import DiagonalSSMKernel
from pspikessm.models.kernels.dplr import DPLRSSMKernel
from pspikessm.models.settings import BlockSettings

KERNELS = {
    "dplr": {"name": "dplr", "init_args": {"l_max": 40}},
    "dplr_per_neuron": {"name": "dplr", "init_args": {"l_max": 40, "shared": False}},
    "dplr_true_c": "dplr",  # l_max None: C̃ from a dense matrix power at every call
    "diag": "diag",
}


def model_of(kernel: str, two_sided: bool, second_branch: bool = True) -> PSpikeSSM:
    torch.manual_seed(0)
    block = BlockSettings(
        d_state=4, kernel=KERNELS[kernel], two_sided=two_sided, second_branch=second_branch
    )
    model = PSpikeSSM(num_classes=3, vocab_size=7, d_model=6, n_layers=3, block=block)
    with torch.no_grad():  # every layer and branch its own parameters, so a mix-up shows
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model.double().train()


def run(model: PSpikeSSM, inputs, lengths, uniforms):
    """Logits, every parameter's gradient and every spike site's spikes."""
    spikes = []
    handles = [
        emitter.register_forward_hook(lambda module, args, out: spikes.append(out.detach()))
        for _, emitter in spike_emitters(model)
    ]
    model.zero_grad(set_to_none=True)
    logits = model(inputs, lengths, uniforms)
    F.cross_entropy(logits, torch.tensor([0, 2])).backward()
    for handle in handles:
        handle.remove()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return logits.detach(), grads, spikes


@pytest.mark.parametrize("joined", [False, True], ids=["cpu_path", "gpu_path"])
@pytest.mark.parametrize("two_sided", [False, True], ids=["one_sided", "two_sided"])
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_the_bank_equals_each_layers_own_kernels(
    kernel: str, two_sided: bool, joined: bool, monkeypatch
):
    """The reference: each branch's own kernel and convolution. ``gpu_path``: the bank's
    kernels with each block's branches convolved as one, as on a GPU."""
    monkeypatch.setattr(convolution, "joins_branches", lambda x: joined)
    model = model_of(kernel, two_sided)
    inputs = torch.randint(1, 7, (2, 32))
    lengths = torch.tensor([32, 20])
    uniforms = model.draw_uniforms(2, 32, torch.Generator().manual_seed(1), dtype=torch.float64)
    assert all(k is not None for k in model.kernel_bank(32)), "the bank must be in use"
    batched = run(model, inputs, lengths, uniforms)
    monkeypatch.setattr(model.kernel_bank, "stackable", lambda: False)  # each its own
    monkeypatch.setattr(convolution, "joins_branches", lambda x: False)  # each branch alone
    assert all(k is None for k in model.kernel_bank(32))
    per_layer = run(model, inputs, lengths, uniforms)
    torch.testing.assert_close(batched[0], per_layer[0], rtol=0, atol=1e-6)
    assert batched[1].keys() == per_layer[1].keys()
    for name in batched[1]:
        torch.testing.assert_close(batched[1][name], per_layer[1][name], rtol=0, atol=1e-6)
        assert batched[1][name].abs().sum() > 0 or "kernel" not in name, name
    assert len(batched[2]) == 3 * 4  # 3 layers × 2 branches × input and output spikes
    for ours, theirs in zip(batched[2], per_layer[2], strict=True):
        assert torch.equal(ours, theirs)


@pytest.mark.parametrize("kernel_class", [DPLRSSMKernel, DiagonalSSMKernel])
def test_stacked_kernels_are_each_kernel_alone(kernel_class):
    torch.manual_seed(0)
    settings = BlockSettings(d_state=4)
    kernels = [kernel_class(5, 2, settings).double() for _ in range(3)]
    with torch.no_grad():
        for kernel in kernels:
            for parameter in kernel.parameters():
                parameter.add_(0.05 * torch.randn_like(parameter))
    stacked = kernel_class.stacked(kernels, 24)  # (G C H L)
    assert stacked.shape == (3, 2, 5, 24)
    for g, kernel in enumerate(kernels):
        torch.testing.assert_close(stacked[g], kernel(24), rtol=0, atol=1e-12)


def test_the_bank_steps_aside_for_user_kernels_and_cached_evaluation():
    class ScaledDiagonal(DiagonalSSMKernel):  # a user's variant: its forward, no stacked
        def forward(self, length: int) -> torch.Tensor:
            return 0.5 * super().forward(length)

    model = model_of("diag", two_sided=False)
    assert all(k is not None for k in model.kernel_bank(16))
    with torch.no_grad():
        model.eval()
        assert all(k is None for k in model.kernel_bank(16))  # cached spectra instead
        model.train()
    for block in model.blocks:
        for branch in block.branches:
            branch.ssm.kernel.__class__ = ScaledDiagonal
    assert not model.kernel_bank.stackable()
    assert all(k is None for k in model.kernel_bank(16))
    x = torch.randn(2, 6, 16, dtype=torch.float64)
    ssm = model.blocks[0].branches[0].ssm
    own = ssm(x)  # per layer, through the user's forward: half the kernel, the same skip
    doubled = 2 * own - ssm.d.unsqueeze(-1) * x
    ScaledDiagonal.forward = DiagonalSSMKernel.forward
    torch.testing.assert_close(doubled, ssm(x), rtol=0, atol=1e-12)


def test_one_branch_blocks_receive_their_own_kernel():
    model = model_of("diag", two_sided=True, second_branch=False)
    kernels = model.kernel_bank(16)
    assert [tuple(k.shape) for k in kernels] == [(6, 32)] * 3
    for block, kernel in zip(model.blocks, kernels, strict=True):
        own = block.branches[0].ssm.skip_kernel(16, 32)
        torch.testing.assert_close(kernel, own, rtol=0, atol=1e-12)
