"""The Triton spike-site kernels (``models/fused_spikes.py``) equal their PyTorch reference,
values and gradients, run by Triton's interpreter on CPU (``TRITON_INTERPRET=1``, set in a
child process: it must be set before triton is imported)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import itertools, torch
from pspikessm.models import fused_spikes as fs

cases = 0
for affine, masked, gelu in itertools.product([True, False], repeat=3):
    g = torch.Generator().manual_seed(cases)
    x = (torch.rand(3, 5, 7, generator=g) * 2.4 - 0.7).requires_grad_()
    scale = (torch.rand(5, generator=g) + 0.5).requires_grad_() if affine else None
    shift = (torch.rand(5, generator=g) * 0.4 - 0.2).requires_grad_() if affine else None
    uniforms = torch.rand(3, 5, 7, generator=g)
    mask = (torch.arange(7) < torch.tensor([7, 4, 2]).view(3, 1, 1)).float() if masked else None
    weights = torch.randn(3, 5, 7, generator=g)
    results = []
    for run in (fs.FusedDriveSpikes.apply, fs.drive_spikes_reference):
        spikes = run(x, scale, shift, uniforms, mask, gelu)
        leaves = [t for t in (x, scale, shift) if t is not None]
        grads = torch.autograd.grad((spikes * weights).sum(), leaves)
        results.append((spikes.detach(), grads))
    (fused, fused_grads), (ref, ref_grads) = results
    assert torch.equal(fused, ref), (affine, masked, gelu)
    assert 0 < fused.sum() < fused.numel()
    for a, b in zip(fused_grads, ref_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        assert a.abs().sum() > 0
    cases += 1
assert not fs.use_kernel(x)  # CPU tensors: the reference runs in the model
print("cases", cases)
"""


@pytest.mark.slow
def test_fused_drive_spikes_kernel_equals_reference_under_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "cases 8" in run.stdout
