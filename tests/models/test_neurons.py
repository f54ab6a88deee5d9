"""The baselines' neurons against plain references: LIF loop, surrogates, Heaviside STE."""

from __future__ import annotations

import math

import pytest
import torch

from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.neurons.binary import HeavisideSpike
from pspikessm.models.neurons.lif import LIFNeuron
from pspikessm.models.settings import BlockSettings


def lif_reference(current: list[float], beta: float, threshold: float, reset: str) -> list[float]:
    """One neuron in plain Python floats."""
    v, out = 0.0, []
    for i in current:
        v = beta * v + i
        s = 1.0 if v > threshold else 0.0
        v = v - threshold * s if reset == "subtract" else v * (1 - s)
        out.append(s)
    return out


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_lif_equals_plain_reference(reset: str) -> None:
    torch.manual_seed(0)
    current = torch.rand(2, 3, 20, dtype=torch.float64) * 0.8
    spikes = LIFNeuron(beta=0.8, threshold=1.0, reset=reset)(current)
    for b in range(2):
        for h in range(3):
            expected = lif_reference(current[b, h].tolist(), 0.8, 1.0, reset)
            assert spikes[b, h].tolist() == expected
    assert 0 < spikes.mean() < 1


@pytest.mark.parametrize("surrogate", ["arctan", "fast_sigmoid"])
def test_lif_surrogate_gradient(surrogate: str) -> None:
    """One step from rest: ds/dI is the surrogate at I - θ."""
    current = torch.tensor([[[0.2], [0.9], [1.3]]], requires_grad=True)
    LIFNeuron(threshold=1.0, surrogate=surrogate)(current).sum().backward()
    x = current.detach() - 1.0
    if surrogate == "arctan":
        expected = 1.0 / (1 + (math.pi / 2 * 2.0 * x) ** 2)  # α = 2: α/2 / (1 + (π α x/2)^2)
    else:
        expected = 1.0 / (1 + 25.0 * x.abs()) ** 2
    torch.testing.assert_close(current.grad, expected)


def test_lif_ssm_block_matches_per_step_reference() -> None:
    """The LIF-SSM block's vectorised part (the SSM current by FFT convolution) and its LIF
    loop equal a plain per-step run: SSM recurrence and LIF step by step (float64)."""
    torch.manual_seed(0)
    settings = BlockSettings(d_state=4, neuron="lif", dt_min=0.05, dt_max=0.5)
    block = PSpikeSSMBlock(6, settings).double().eval()
    x = torch.randn(2, 6, 30, dtype=torch.float64)
    with torch.no_grad():
        parallel = block(x)
        state = block.initial_state(2)
        stepped = torch.cat([block.step(x[..., t : t + 1], state) for t in range(30)], dim=-1)
    torch.testing.assert_close(stepped, parallel, atol=1e-10, rtol=0)


def test_heaviside_spike_straight_through() -> None:
    x = torch.tensor([-0.5, 0.2, 0.6, 1.4], requires_grad=True)
    spikes = HeavisideSpike()(x)
    assert spikes.tolist() == [0.0, 0.0, 1.0, 1.0]
    spikes.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("surrogate", ["arctan", "fast_sigmoid"])
def test_fused_lif_loop_matches_the_plain_loop(reset: str, surrogate: str) -> None:
    """LIFNeuron.forward (the loop outside autograd, hand-written BPTT) equals the loop as users
    write it, spikes and gradients, in float64."""
    torch.manual_seed(0)
    neuron = LIFNeuron(beta=0.8, threshold=0.7, reset=reset, surrogate=surrogate)
    current = (torch.randn(3, 5, 40, dtype=torch.float64) * 0.8 + 0.4).requires_grad_()
    mask = (torch.arange(40) < torch.tensor([40, 31, 9]).view(3, 1, 1)).double()
    weights = torch.randn(3, 5, 40, dtype=torch.float64)
    fast, plain = neuron(current, mask), neuron.forward_reference(current, mask)
    assert torch.equal(fast, plain) and 0.1 < fast.mean() < 0.9
    (g_fast,) = torch.autograd.grad((fast * weights).sum(), current)
    (g_plain,) = torch.autograd.grad((plain * weights).sum(), current)
    torch.testing.assert_close(g_fast, g_plain, rtol=1e-12, atol=1e-12)
