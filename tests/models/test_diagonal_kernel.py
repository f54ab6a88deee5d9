"""The diagonal SSM kernel against the explicit recurrence, and causality of the convolution."""

from __future__ import annotations

import pytest
import torch

from pspikessm.models import BlockSettings
from pspikessm.models.convolution import SSMConvolution
from pspikessm.models.kernels import build_kernel
from pspikessm.models.kernels.diagonal import DiagonalSSMKernel
from pspikessm.models.kernels.hippo import legs_nplr, legs_transition
from pspikessm.models.kernels.parameters import dt_of


def recurrence_output(kernel: DiagonalSSMKernel, x: torch.Tensor) -> torch.Tensor:
    """``h[t] = Ā h[t-1] + B̄ x[t]``, ``y[t] = 2 Re(C h[t])`` step by step; x (H, L) → (C, H, L)."""
    _, a_bar, b_bar = kernel.discretize()  # (H N/2)
    c = kernel.c_complex  # (C H N/2)
    state = torch.zeros_like(a_bar)
    outputs = []
    for t in range(x.shape[-1]):
        state = a_bar * state + b_bar * x[:, t : t + 1]
        outputs.append(2.0 * (c * state).sum(-1).real)  # (C H)
    return torch.stack(outputs, dim=-1)


@pytest.mark.parametrize("init", ["legs", "lin"])
def test_kernel_equals_recurrence(init: str) -> None:
    torch.manual_seed(0)
    settings = BlockSettings(kernel="diag", d_state=16, init=init, dt_min=1e-3, dt_max=0.5)
    kernel = DiagonalSSMKernel(d_model=4, channels=2, settings=settings)
    kernel = kernel.double()
    length = 64
    impulse = torch.zeros(4, length, dtype=torch.float64)
    impulse[:, 0] = 1.0
    expected = recurrence_output(kernel, impulse)
    torch.testing.assert_close(kernel(length), expected, rtol=0, atol=1e-6)
    # And a whole input sequence: the FFT convolution with the kernel is the recurrence.
    conv = SSMConvolution(4, BlockSettings(kernel="diag", d_state=16, init=init)).double()
    conv.d.data.zero_()
    x = torch.randn(4, length, dtype=torch.float64)
    torch.testing.assert_close(
        conv(x.unsqueeze(0))[0], recurrence_output(conv.kernel, x)[0], rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("transform", ["exp", "softplus"])
def test_dt_is_log_uniform_in_range(transform: str) -> None:
    torch.manual_seed(0)
    settings = BlockSettings(d_state=4, dt_min=1e-3, dt_max=1e-1)
    kernel = DiagonalSSMKernel(d_model=2000, settings=settings, dt_transform=transform)
    dt = dt_of(kernel.inv_dt, transform)
    assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
    # Log-uniform: log10(dt) is uniform on [-3, -1], so its mean is -2.
    assert abs(dt.log10().mean().item() + 2.0) < 0.05


def test_legs_init_has_hippo_structure() -> None:
    a, _ = legs_transition(8)
    # HiPPO-LegS is lower triangular with eigenvalues -1, ..., -N.
    eigenvalues = torch.linalg.eigvals(a).real.sort().values
    torch.testing.assert_close(eigenvalues, -torch.arange(8, 0, -1, dtype=torch.float64))
    nplr = legs_nplr(8)
    assert torch.allclose(nplr.w.real, torch.full((4,), -0.5, dtype=torch.float64))


@pytest.mark.parametrize("kernel", ["diag", "dplr"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_future_leaks_only_into_two_sided_kernel(bidirectional: bool, kernel: str) -> None:
    torch.manual_seed(0)
    settings = BlockSettings(kernel=kernel, d_state=8, two_sided=bidirectional)
    conv = SSMConvolution(d_model=3, settings=settings).double()
    x = torch.randn(2, 3, 50, dtype=torch.float64)
    changed = x.clone()
    changed[..., 30:] += 1.0  # change only the future of step 29
    difference = (conv(x) - conv(changed))[..., :30].abs().max().item()
    if bidirectional:
        assert difference > 1e-3
    else:
        assert difference < 1e-10


def test_unknown_kernel_lists_valid_names() -> None:
    with pytest.raises(ValueError, match=r"block.kernel='s5': expected one of \['diag', 'dplr'\]"):
        build_kernel(4, 1, BlockSettings(kernel="s5"))
