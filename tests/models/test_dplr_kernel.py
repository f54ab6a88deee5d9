"""The S4 (DPLR) kernel against the dense state space it stands for."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import BlockSettings
from pspikessm.models.convolution import SSMConvolution
from pspikessm.models.kernels import build_kernel
from pspikessm.models.kernels.dplr import DPLRSSMKernel
from pspikessm.models.kernels.hippo import legs_nplr, legs_transition
from pspikessm.models.kernels.parameters import dt_of


def dplr(d_model: int, d_state: int, **options) -> DPLRSSMKernel:
    """A DPLR kernel of H = ``d_model`` neurons of state size ``d_state``; ``options``: the
    kernel's own (channels, shared, ...) and BlockSettings fields (dt_min, init, ...)."""
    names = ("channels", "shared", "dt_transform", "b_clip", "l_max")
    own = {k: options.pop(k) for k in names if k in options}
    return DPLRSSMKernel(d_model, settings=BlockSettings(d_state=d_state, **options), **own)


def perturbed_kernel(shared: bool, channels: int = 2, l_max: int | None = None) -> DPLRSSMKernel:
    """A float64 DPLR kernel moved away from its init, so p and B matter in the check."""
    torch.manual_seed(0)
    kernel = dplr(3, 8, channels=channels, shared=shared, dt_min=0.01, dt_max=0.5, l_max=l_max)
    kernel = kernel.double()
    with torch.no_grad():
        for parameter in (kernel.p, kernel.b, kernel.w_imag):
            parameter.add_(0.3 * torch.randn_like(parameter))
    return kernel


def dense_impulse_response(kernel: DPLRSSMKernel, length: int) -> torch.Tensor:
    """``K[l] = C Ā^l B̄`` (C, H, L) by iterating the dense bilinear system built here."""
    dt, a, b, c = kernel.dense()  # (H) (H N N) (H N) (C H N)
    eye = torch.eye(a.shape[-1], dtype=a.dtype)
    half = (dt / 2).view(-1, 1, 1)
    a_bar = torch.linalg.inv(eye - half * a) @ (eye + half * a)
    state = (torch.linalg.inv(eye - half * a) @ (dt.view(-1, 1) * b).unsqueeze(-1))[..., 0]
    out = []
    for _ in range(length):
        out.append(torch.einsum("chn,hn->ch", c, state).real)
        state = torch.einsum("hnm,hm->hn", a_bar, state)
    return torch.stack(out, dim=-1)


@pytest.mark.parametrize("l_max", [None, 64])
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("length", [33, 64])
def test_dplr_kernel_equals_dense_recurrence(shared: bool, length: int, l_max) -> None:
    """True C, or S4's C̃ tuned to l_max = 64 (the kernel evaluated at 64 and cut)."""
    kernel = perturbed_kernel(shared, l_max=l_max)
    with torch.no_grad():
        fast = kernel(length)
        reference = dense_impulse_response(kernel, length)
    assert fast.shape == (2, 3, length)
    assert reference.abs().max() > 0.1  # a non-trivial kernel
    torch.testing.assert_close(fast, reference, atol=1e-6, rtol=0)


def test_c_tilde_parameter_is_s4s() -> None:
    """With l_max, the parameter is C̃ = C (I - Ā^l_max) for a standard normal true C, and the
    kernel equals the true-C kernel of that C at every length up to l_max; longer is refused."""
    torch.manual_seed(3)
    tilde = dplr(4, 8, channels=2, l_max=50).double()
    true_c = tilde.dense()[3][..., :4]  # (C H N/2)
    plain = dplr(4, 8, channels=2).double()
    plain.load_state_dict(tilde.state_dict())
    with torch.no_grad():
        plain.c.copy_(torch.view_as_real(true_c.resolve_conj()))
        for length in (7, 50):
            torch.testing.assert_close(tilde(length), plain(length), atol=1e-9, rtol=0)
    assert abs(true_c.real.std().item() - 0.5**0.5) < 0.2  # randn complex: each part N(0, 1/2)
    with pytest.raises(
        ValueError, match=r"longer than the DPLR kernel's l_max=50.*kernel.init_args.l_max"
    ):
        tilde(51)


def test_shared_and_per_neuron_parameters() -> None:
    shared, per_neuron = dplr(5, 8), dplr(5, 8, shared=False)
    assert shared.p.shape == (1, 4, 2) and per_neuron.p.shape == (5, 4, 2)
    assert shared.c.shape == per_neuron.c.shape == (1, 5, 4, 2)  # C per neuron in both
    assert shared.inv_dt.shape == (5,)


def test_official_init_details() -> None:
    """dt = softplus(inv_dt) log-uniform in [dt_min, dt_max]; Im(B) clipped to [-2, 2]."""
    torch.manual_seed(0)
    kernel = dplr(2000, 64, dt_min=1e-3, dt_max=1e-1)
    assert kernel.dt_transform == "softplus"
    dt = dt_of(kernel.inv_dt, "softplus")
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    assert abs(dt.log10().mean().item() + 2.0) < 0.05
    b = torch.view_as_complex(kernel.b)
    unclipped = torch.view_as_complex(dplr(2, 64, b_clip=None).b)
    assert unclipped.imag.abs().max() > 2.5  # the clip matters at N = 64
    assert b.imag.abs().max() <= 2.0 + 1e-6
    torch.testing.assert_close(b.real, unclipped.real.expand_as(b.real))


def test_nplr_reconstructs_hippo_legs() -> None:
    """In float64, ``V (diag(w) - p p*) V*`` over both conjugate halves is LegS's A exactly,
    and the normal part's eigenvalues lie on Re = -1/2 in conjugate pairs."""
    n = 8
    nplr = legs_nplr(n)
    v = torch.cat([nplr.v, nplr.v.conj()], dim=-1)  # (N N) unitary
    w = torch.cat([nplr.w, nplr.w.conj()])
    p = torch.cat([nplr.p, nplr.p.conj()])
    a = v @ (torch.diag(w) - p.unsqueeze(-1) * p.conj().unsqueeze(0)) @ v.conj().T
    torch.testing.assert_close(a.real, legs_transition(n)[0], atol=1e-10, rtol=0)
    assert a.imag.abs().max() < 1e-10
    torch.testing.assert_close(nplr.w.real, torch.full((n // 2,), -0.5, dtype=torch.float64))


def test_initial_state_matrix_has_legs_eigenvalues() -> None:
    """LegS's A is lower triangular with diagonal -(n+1): eigenvalues -1, ..., -N. The kernel
    stores its init in float32 and LegS's A is far from normal, so the eigenvalues of the
    stored matrix match to 1e-2 relative (float64 storage gives 1e-10: the test above)."""
    n = 8
    _, a, _, _ = dplr(2, n).double().dense()
    eigenvalues = torch.linalg.eigvals(a[0])
    expected = -torch.arange(1, n + 1, dtype=torch.float64)
    assert eigenvalues.imag.abs().max() < 1e-2
    torch.testing.assert_close(eigenvalues.real.sort().values, expected.flip(0), rtol=1e-2, atol=0)


def test_float32_kernel_is_close_to_float64_at_long_length() -> None:
    kernel = dplr(4, 16, dt_min=1e-3, dt_max=1e-1)
    with torch.no_grad():
        single = kernel(2048)
        double = kernel.double()(2048)
    assert (single.double() - double).abs().max() < 1e-3 * double.abs().max()


def test_dplr_gradients_reach_every_parameter() -> None:
    settings = BlockSettings(
        d_state=8, two_sided=True, kernel={"name": "dplr", "init_args": {"shared": False}}
    )
    conv = SSMConvolution(4, settings)
    conv(torch.rand(2, 4, 16)).square().sum().backward()
    for name, parameter in conv.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_unknown_kernel_and_init_are_named() -> None:
    with pytest.raises(ValueError, match=r"'s5'.*\['diag', 'dplr'\]"):
        build_kernel(4, 1, BlockSettings(kernel="s5"))
    with pytest.raises(ValueError, match="block.init='lin': the DPLR kernel supports"):
        dplr(4, 8, init="lin")
