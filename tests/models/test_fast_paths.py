"""Every fast path against its plain reference: kernel, FFT convolution, kernel cache, spikes."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models.convolution import (
    FFTConvolution,
    SSMConvolution,
    fast_fft_size,
    fft_conv,
    fft_conv_reference,
    two_sided_kernel,
)
from pspikessm.models.kernels import cauchy
from pspikessm.models.kernels.cauchy import cauchy_sums, cauchy_sums_reference
from pspikessm.models.kernels.diagonal import DiagonalSSMKernel, power_split
from pspikessm.models.layers import AffineFunction, channel_affine_reference
from pspikessm.models.neurons.pspike import SpikeSampler, sample_spikes_reference
from pspikessm.models.settings import BlockSettings


def diag(d_state: int, **settings) -> BlockSettings:
    return BlockSettings(kernel="diag", d_state=d_state, **settings)


def _grads(outputs: torch.Tensor, inputs: list[torch.Tensor], seed: int = 0) -> list[torch.Tensor]:
    cotangent = torch.randn(outputs.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(outputs, inputs, cotangent.to(outputs.dtype))


def test_fast_fft_size_is_smallest_5_smooth_size():
    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    for minimum in range(1, 700):
        size = fast_fft_size(minimum)
        assert size >= minimum and smooth(size)
        assert not any(smooth(n) for n in range(minimum, size))
    assert fast_fft_size(4096) == 4096


@pytest.mark.parametrize("two_sided", [False, True])
@pytest.mark.parametrize("length", [1, 9, 32])
def test_fft_conv_matches_reference(two_sided: bool, length: int):
    torch.manual_seed(length)
    n = fast_fft_size(2 * length) + 3  # any size >= 2L-1 is valid, not only fast ones
    x = torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True)
    kernel = torch.randn(3, length, dtype=torch.float64)
    if two_sided:
        kernel = two_sided_kernel(kernel, torch.randn(3, length, dtype=torch.float64), n)
    kernel.requires_grad_()
    fast, reference = fft_conv(x, kernel, n), fft_conv_reference(x, kernel, n)
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    for g_fast, g_ref in zip(
        _grads(fast, [x, kernel]), _grads(reference, [x, kernel]), strict=True
    ):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-10)
    assert torch.autograd.gradcheck(FFTConvolution.apply, (x, kernel, n), fast_mode=True)
    with pytest.raises(ValueError, match="fft_size"):
        fft_conv(x, kernel, 2 * length - 2)


@pytest.mark.parametrize("length", [1, 7, 16, 100, 1000, 2049])
@pytest.mark.parametrize("init", ["legs", "lin"])
def test_kernel_matches_vandermonde_reference_float64(length: int, init: str):
    torch.manual_seed(length)
    settings = diag(16, init=init, dt_min=1e-3, dt_max=0.5)
    kernel = DiagonalSSMKernel(6, channels=2, settings=settings).double()
    fast, reference = kernel(length), kernel.kernel_reference(length)
    assert fast.shape == reference.shape == (2, 6, length) and fast.is_contiguous()
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10)
    params = list(kernel.parameters())
    for g_fast, g_ref in zip(_grads(fast, params), _grads(reference, params), strict=True):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-9, atol=1e-9)


def test_kernel_float32_is_as_accurate_as_the_reference():
    torch.manual_seed(0)
    kernel = DiagonalSSMKernel(16, channels=2, settings=diag(64))
    length = 4096
    assert power_split(length) == (64, 64)
    exact = kernel.double().kernel_reference(length)
    kernel.float()
    scale = exact.abs().max()
    fast_error = (kernel(length).double() - exact).abs().max() / scale
    reference_error = (kernel.kernel_reference(length).double() - exact).abs().max() / scale
    assert fast_error < max(2 * reference_error, 1e-6)


@pytest.mark.parametrize("kernel", ["diag", "dplr"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("length", [37, 64])  # 37: fast FFT size 75, not 2L
def test_ssm_convolution_matches_reference(bidirectional: bool, length: int, kernel: str):
    torch.manual_seed(1)
    settings = BlockSettings(
        kernel=kernel, d_state=8, two_sided=bidirectional, dt_min=0.05, dt_max=0.5
    )
    conv = SSMConvolution(5, settings).double()
    x = torch.rand(3, 5, length, dtype=torch.float64, requires_grad=True)
    fast, reference = conv(x), conv.forward_reference(x)
    torch.testing.assert_close(fast, reference, rtol=1e-10, atol=1e-10)
    inputs = [x, *conv.parameters()]
    for g_fast, g_ref in zip(_grads(fast, inputs), _grads(reference, inputs), strict=True):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-9, atol=1e-9)


def test_ssm_convolution_eval_path_matches_training_path():
    torch.manual_seed(6)
    conv = SSMConvolution(4, diag(8, two_sided=True))
    x = torch.rand(2, 4, 45)
    trained = conv(x)
    with torch.no_grad():
        evaluated = conv.eval()(x)
    torch.testing.assert_close(evaluated, trained, rtol=1e-5, atol=1e-5)


def test_spectrum_cached_in_eval_and_invalidated_by_updates_and_train():
    torch.manual_seed(2)
    conv = SSMConvolution(4, diag(8, two_sided=True)).eval()
    x = torch.rand(2, 4, 50)
    with torch.no_grad():
        first = conv.kernel_spectrum(50, 100)
        assert conv.kernel_spectrum(50, 100) is first  # cached
        y = conv(x)
        conv.kernel.inv_dt.add_(0.3)  # an in-place update, as an optimizer step makes
        changed = conv(x)
        assert not torch.allclose(changed, y)
        torch.testing.assert_close(changed, conv.forward_reference(x), rtol=1e-4, atol=1e-4)
        conv.d.copy_(torch.zeros(4))  # as load_state_dict writes parameters
        torch.testing.assert_close(conv(x), conv.forward_reference(x), rtol=1e-4, atol=1e-4)
        cached = conv.kernel_spectrum(50, 100)
        conv.train()
        conv.eval()
        assert conv.kernel_spectrum(50, 100) is not cached
    with torch.inference_mode():  # as Lightning evaluates: fills the cache with inference
        cached_output = conv(x)  # tensors, which later no_grad calls may still read
    with torch.no_grad():
        torch.testing.assert_close(conv(x), cached_output)
    with_grad = conv(x)  # gradients enabled: computed afresh, part of the graph
    assert with_grad.grad_fn is not None
    with_grad.sum().backward()
    assert conv.kernel.inv_dt.grad is not None
    conv.train()
    with torch.no_grad():
        assert conv.kernel_spectrum(50, 100) is not conv.kernel_spectrum(50, 100)


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_stochastic_spike_matches_reference(masked: bool, signed: bool):
    torch.manual_seed(3)
    centre = 0.0 if signed else 0.5
    x = (torch.randn(4, 6, 33) * 0.8 + centre).requires_grad_()
    # The window's edges and just beyond: (0, 1), or (-1, 1) for signed spikes.
    x.data[0, 0, :6] = torch.tensor([0.0, 1.0, -1e-3, 1.0 + 1e-3, -1.0, -1.0 - 1e-3])
    mask = (torch.arange(33) < torch.tensor([[33], [20], [5], [0]])).unsqueeze(1).float()
    mask = mask if masked else None
    sampler = SpikeSampler(signed=signed).train()
    uniforms = torch.rand(4, 6, 33)
    uniforms[0, 0, :6] = torch.tensor([0.0, 1.0, 0.5, 0.999, 0.0, 0.5])
    for u in (uniforms, None):
        torch.manual_seed(4)
        fast = sampler(x, mask, u)
        torch.manual_seed(4)
        reference = sample_spikes_reference(x, mask, u, signed)
        torch.testing.assert_close(fast, reference, rtol=0, atol=0)
        assert fast.dtype == x.dtype
        assert set(fast.unique().tolist()) <= ({-1.0, 0.0, 1.0} if signed else {0.0, 1.0})
        (g_fast,), (g_ref,) = _grads(fast, [x]), _grads(reference, [x])
        torch.testing.assert_close(g_fast, g_ref, rtol=0, atol=0)
    assert fast.abs().mean() > 0.2  # drawn, not all zero
    if signed:
        assert (fast < 0).any() and (fast > 0).any()


def test_stochastic_spike_bfloat16_and_hooks_see_spikes():
    torch.manual_seed(5)
    sampler = SpikeSampler()
    seen = []
    sampler.register_forward_hook(lambda module, args, out: seen.append(out))
    x = torch.rand(2, 3, 40).to(torch.bfloat16).requires_grad_()
    spikes = sampler(x)
    assert spikes.dtype == torch.bfloat16 and seen[0] is spikes
    spikes.float().sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    sampler.sample_in_eval = False
    sampler.eval()
    torch.testing.assert_close(sampler(x.detach()), x.detach().clamp(0, 1))


@pytest.mark.parametrize("chunk", [1 << 22, 24])  # one chunk; several (2 frequencies each)
@pytest.mark.parametrize("shared", [True, False])
def test_cauchy_sums_match_complex_autograd(shared: bool, chunk: int, monkeypatch):
    """The DPLR kernel's hand-written Cauchy backward equals complex autograd (float64)."""
    monkeypatch.setattr(cauchy, "CHUNK_ELEMENTS", chunk)
    torch.manual_seed(4)
    heads, frequencies, modes, rows = 3, 9, 4, 6
    v = torch.randn(rows, heads, modes, dtype=torch.complex128, requires_grad=True)
    w_real = -torch.rand(1 if shared else heads, modes, dtype=torch.float64)
    w_imag = torch.randn_like(w_real)
    w = torch.complex(w_real, w_imag).expand(heads, modes).requires_grad_()
    dt = torch.rand(heads, dtype=torch.float64, requires_grad=True)
    omega = torch.exp(-2j * torch.pi * torch.arange(frequencies, dtype=torch.float64) / 16)
    scale = (1 + omega) * (dt / 2).unsqueeze(-1)  # (H K), differentiable through dt
    fast = cauchy_sums(v, 1 - omega, scale, w)
    reference = cauchy_sums_reference(v, 1 - omega, scale, w)
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    weights = torch.randn_like(fast)
    inputs = [v, w, dt]
    grads = torch.autograd.grad((fast * weights).real.sum(), inputs, retain_graph=True)
    expected = torch.autograd.grad((reference * weights).real.sum(), inputs)
    for g_fast, g_ref in zip(grads, expected, strict=True):
        torch.testing.assert_close(g_fast, g_ref, rtol=1e-10, atol=1e-10)


def test_channel_affine_matches_reference_and_its_gradients():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 7, dtype=torch.float64, requires_grad=True)
    scale = torch.randn(5, dtype=torch.float64, requires_grad=True)
    shift = torch.randn(5, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(AffineFunction.apply, (x, scale, shift))
    grad = torch.randn(3, 5, 7, dtype=torch.float64)
    fast = torch.autograd.grad(AffineFunction.apply(x, scale, shift), (x, scale, shift), grad)
    plain = torch.autograd.grad(channel_affine_reference(x, scale, shift), (x, scale, shift), grad)
    for ours, theirs in zip(fast, plain, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    torch.testing.assert_close(
        AffineFunction.apply(x, scale, shift), channel_affine_reference(x, scale, shift)
    )
    frozen = AffineFunction.apply(x, scale.detach(), shift.detach())  # only x needs a gradient
    (grad_x,) = torch.autograd.grad(frozen, x, grad)
    torch.testing.assert_close(grad_x, fast[0])
