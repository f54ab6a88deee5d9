"""NormalizedSpikeSampler: the standardised drive and its gradient against the plain reference,
running statistics for evaluation, and neurons that a plain sampler would leave silent."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import PSpikeSSM
from pspikessm.models.neurons import build_neuron
from pspikessm.models.neurons.normalized import (
    NormalizedSpikeSampler,
    normalized_drive_reference,
)
from pspikessm.models.neurons.pspike import SpikeSampler, sample_spikes_reference
from pspikessm.models.settings import BlockSettings


def _inputs(signed: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    # Neurons on very different scales and offsets: the window must follow each of them.
    scales = torch.tensor([0.1, 1.0, 5.0, 2.0, 0.5, 3.0], dtype=torch.float64)
    shifts = torch.tensor([-4.0, 0.0, 2.0, -1.0, 10.0, 0.3], dtype=torch.float64)
    x = torch.randn(3, 6, 40, dtype=torch.float64) * scales[:, None] + shifts[:, None]
    mask = (torch.arange(40) < torch.tensor([[40], [25], [7]])).unsqueeze(1).double()
    return x.requires_grad_(), mask, torch.rand(3, 6, 40, dtype=torch.float64)


@pytest.mark.parametrize("signed", [False, True])
def test_spikes_and_gradients_match_the_plain_reference(signed: bool):
    x, mask, uniforms = _inputs(signed)
    neuron = NormalizedSpikeSampler(6, scale=0.8, offset=-0.1, signed=signed).double().train()
    spikes = neuron(x, mask, uniforms)
    drive = normalized_drive_reference(x, mask, None, None, 0.8, -0.1, neuron.eps)
    reference = sample_spikes_reference(drive, mask, uniforms, signed)
    torch.testing.assert_close(spikes, reference, rtol=0, atol=0)
    upstream = torch.randn_like(x)
    (grad,) = torch.autograd.grad((spikes * upstream).sum(), x)
    (grad_reference,) = torch.autograd.grad((reference * upstream).sum(), x)
    torch.testing.assert_close(grad, grad_reference, rtol=1e-12, atol=1e-12)
    assert grad.abs().sum() > 0

    # Evaluation: the running statistics (one update with momentum 0.1), not the batch's.
    neuron.eval()
    valid = mask.expand_as(x).bool().transpose(0, 1).reshape(6, -1)
    values = x.detach().transpose(0, 1).reshape(6, -1)
    batch_mean = torch.stack([v[m].mean() for v, m in zip(values, valid, strict=True)])
    batch_var = torch.stack([v[m].var() for v, m in zip(values, valid, strict=True)])
    torch.testing.assert_close(neuron.running_mean, 0.1 * batch_mean)
    torch.testing.assert_close(neuron.running_var, 0.9 + 0.1 * batch_var)
    drive = normalized_drive_reference(
        x, mask, neuron.running_mean, neuron.running_var, 0.8, -0.1, neuron.eps
    )
    expected = sample_spikes_reference(drive, mask, uniforms, signed)
    torch.testing.assert_close(neuron(x, mask, uniforms), expected, rtol=0, atol=0)


def test_a_neuron_a_plain_sampler_leaves_silent_keeps_firing():
    torch.manual_seed(1)
    x = torch.randn(8, 2, 100) * 0.3 - 5.0  # always far below the window
    assert SpikeSampler()(x).sum() == 0
    spikes = NormalizedSpikeSampler(2).train()(x)
    rate = spikes.mean(dim=(0, 2))
    # E[clamp(z - 1/4, 0, 1)] for a standard normal z: 0.236.
    torch.testing.assert_close(rate, torch.full((2,), 0.236), atol=0.03, rtol=0)
    with pytest.raises(ValueError, match="scale"):
        NormalizedSpikeSampler(2, scale=0.0)


def test_the_block_gives_the_neuron_its_width_and_checkpoints_keep_its_statistics():
    neuron = build_neuron({"name": "normalized_pspike", "init_args": {"offset": -0.5}}, 5)
    assert neuron.running_mean.shape == (5,) and neuron.offset == -0.5
    assert isinstance(build_neuron("pspike", 5), SpikeSampler)  # no num_neurons: not given
    settings = BlockSettings(d_state=4, kernel="diag", second_branch=False)
    settings.neuron = "normalized_pspike"
    model = PSpikeSSM(num_classes=3, vocab_size=9, d_model=8, n_layers=2, block=settings)
    keys = [k for k in model.state_dict() if k.endswith("running_var")]
    assert "blocks.0.branches.0.input_spikes.running_var" in keys
    assert "blocks.1.branches.0.output_spikes.running_var" in keys
    logits = model(torch.randint(0, 9, (2, 12)), torch.tensor([12, 5]))
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
