"""SpikeSampler: Bernoulli statistics, the stochastic surrogate gradient, evaluation modes."""

from __future__ import annotations

import torch

from pspikessm.models.neurons.pspike import SpikeSampler


def test_spike_mean_matches_probability() -> None:
    torch.manual_seed(0)
    sampler = SpikeSampler()
    probabilities = torch.tensor([0.0, 0.05, 0.3, 0.5, 0.9, 1.0])
    draws = 200_000
    spikes = sampler(probabilities.expand(draws, -1))
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    mean = spikes.mean(0)
    # Binomial standard error sqrt(p(1-p)/n) <= 0.0012; 5 standard errors is a 1-in-10^6 miss.
    tolerance = 5 * torch.sqrt(probabilities * (1 - probabilities) / draws) + 1e-12
    assert torch.all((mean - probabilities).abs() <= tolerance), (mean, probabilities)


def test_gradient_is_derivative_of_clamp() -> None:
    sampler = SpikeSampler()
    x = torch.tensor([-0.5, 0.0, 0.2, 0.7, 1.0, 1.3], requires_grad=True)
    upstream = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (sampler(x) * upstream).sum().backward()
    # d clamp(x, 0, 1) / dx: 1 inside (0, 1), 0 outside and, as torch defines it, at the ends.
    expected = upstream * torch.tensor([0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    torch.testing.assert_close(x.grad, expected)


def test_expected_mode_is_deterministic_and_returns_probabilities() -> None:
    sampler = SpikeSampler(sample_in_eval=False).eval()
    x = torch.linspace(-0.5, 1.5, 21)
    first, second = sampler(x), sampler(x)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, x.clamp(0, 1))


def test_sample_mode_keeps_sampling_in_eval() -> None:
    torch.manual_seed(0)
    sampler = SpikeSampler(sample_in_eval=True).eval()
    x = torch.full((1000,), 0.5)
    first, second = sampler(x), sampler(x)
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)


def test_uniforms_and_mask_fix_the_draw() -> None:
    sampler = SpikeSampler()
    x = torch.tensor([[0.2, 0.6, 0.9]])
    uniforms = torch.tensor([[0.1, 0.7, 0.5]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    assert sampler(x, mask, uniforms).tolist() == [[1.0, 0.0, 0.0]]


def test_signed_spikes_have_the_mean_and_gradient_of_hardtanh() -> None:
    torch.manual_seed(0)
    sampler = SpikeSampler(signed=True)
    x = torch.tensor([-1.3, -1.0, -0.6, -0.2, 0.0, 0.3, 0.9, 1.0, 1.2], requires_grad=True)
    draws = 100_000
    spikes = sampler(x.expand(draws, -1))
    assert set(spikes.unique().tolist()) == {-1.0, 0.0, 1.0}
    expected = x.detach().clamp(-1, 1)
    tolerance = 5 * torch.sqrt(expected.abs() * (1 - expected.abs()) / draws) + 1e-12
    assert torch.all((spikes.mean(0) - expected).abs() <= tolerance)
    x.grad = None
    (sampler(x) * torch.arange(1.0, 10.0)).sum().backward()
    inside = torch.tensor([0, 0, 1, 1, 1, 1, 1, 0, 0], dtype=torch.float32)
    torch.testing.assert_close(x.grad, torch.arange(1.0, 10.0) * inside)
    assert sampler.firing_window == (-1.0, 1.0)
    sampler.sample_in_eval = False
    torch.testing.assert_close(sampler.eval()(x.detach()), expected)
