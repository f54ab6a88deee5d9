"""The launching ops of a training step (``benchmarks/speed/ops.py``): views are not counted,
the SSM kernels cost the same whatever the depth, and the ListOps configs stay in budget."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from benchmarks.speed.ops import FAST, OpCounter, step_counts, summary, two_steps
from pspikessm.models import PSpikeSSM
from pspikessm.models.settings import BlockSettings

ROOT = Path(__file__).resolve().parents[2]
LISTOPS = ROOT / "configs/lra/listops.yaml"


def test_the_counter_counts_work_and_not_views():
    x = torch.randn(4, 6)
    with OpCounter() as counter:
        y = x.view(6, 4).transpose(0, 1).unsqueeze(0)[..., :2].expand(3, 4, 2)
        z = torch.mul(y, 2.0).sum()
    assert counter.ops == {"aten.mul.Tensor": 1, "aten.sum.default": 1}
    assert z.item() == pytest.approx(3 * 2 * x.view(6, 4).t()[:, :2].sum().item())


def step_ops(kernel: dict | str, n_layers: int) -> dict:
    torch.manual_seed(0)
    block = BlockSettings(d_state=4, kernel=kernel, two_sided=True)
    model = PSpikeSSM(num_classes=3, vocab_size=7, d_model=8, n_layers=n_layers, block=block)
    optimizer = torch.optim.AdamW(model.parameters(), foreach=True)
    inputs, targets = torch.randint(1, 7, (2, 16)), torch.tensor([0, 2])
    counts = two_steps(lambda: F.cross_entropy(model(inputs), targets), optimizer)
    return sum((counts["forward"], counts["backward"]), start=type(counts["forward"])())


@pytest.mark.parametrize(
    "kernel, kernel_op",
    [
        ({"name": "dplr", "init_args": {"l_max": 16}}, "aten.reciprocal_.default"),  # Cauchy
        ("diag", "aten.polar.default"),  # the Vandermonde factors
    ],
)
def test_kernel_ops_do_not_grow_with_depth(kernel, kernel_op):
    """Every layer's and branch's kernel is one computation (``KernelBank``): the kernel's
    own ops occur as often in a 3-layer model as in a 1-layer one, and each further layer
    adds the same number of ops."""
    counts = [step_ops(kernel, n_layers) for n_layers in (1, 2, 3)]
    assert counts[0][kernel_op] > 0
    assert [c[kernel_op] for c in counts] == [counts[0][kernel_op]] * 3
    totals = [sum(c.values()) for c in counts]
    assert totals[2] - totals[1] == totals[1] - totals[0] > 0


@pytest.mark.parametrize(
    "configs, budget",
    [([LISTOPS], 800), ([LISTOPS, FAST], 500)],
    ids=["listops", "listops+fast"],
)
def test_listops_steps_stay_within_their_op_budget(configs, budget):
    """Issue 30's targets, counted as ``python -m benchmarks.speed.ops`` counts them (the
    count does not depend on the batch or the length, only on the kernel's l_max)."""
    totals = summary(step_counts(configs, batch=2, length=64))
    assert totals["total"] <= budget, totals
    assert totals["forward"] and totals["backward"] and totals["optimizer"]
