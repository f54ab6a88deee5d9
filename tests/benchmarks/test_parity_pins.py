"""The ListOps model computes what the authors' code computes (issue 19), pinned without a checkout.

``AUTHORS`` below was recorded from the authors' model (NeuroCompLab-psu/PSpikeSSMs, HEAD
8f7a954) loaded with this project's seed-0 initial weights, on the fixed generated batch of
``benchmarks/parity/pins.py``, by

    python -m benchmarks.parity.pins --authors /tmp/authors

With equal weights the two models differ only in their code; measured so, every statistic
agreed to 1e-5. The statistics: the initial cross-entropy; per layer and branch (``_b``: the
second) the firing rates of the input and output spikes over the valid steps, the output
spikes' rate over the padded steps (the official block does not mask them:
``block.mask_output_padding: false``), and mean and std of the membrane potential u (the SSM
output before the GELU) over the valid steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.parity.pins import PIN_SEED, initial_statistics, pin_batch
from benchmarks.parity.sides import Schedule, ours_side

AUTHORS = {
    "loss": 2.29157,
    "layer0/input.rate": 0.31893,
    "layer0/u.mean": 0.02551,
    "layer0/u.std": 0.65831,
    "layer0/input_b.rate": 0.31872,
    "layer0/u_b.mean": 0.01744,
    "layer0/u_b.std": 0.73946,
    "layer0/output.rate": 0.15673,
    "layer0/output.rate_pad": 0.03143,
    "layer0/output_b.rate": 0.1545,
    "layer0/output_b.rate_pad": 0.03154,
    "layer1/input.rate": 0.36227,
    "layer1/u.mean": -0.03783,
    "layer1/u.std": 0.7708,
    "layer1/input_b.rate": 0.36237,
    "layer1/u_b.mean": -0.04638,
    "layer1/u_b.std": 0.7344,
    "layer1/output.rate": 0.15075,
    "layer1/output.rate_pad": 0.0321,
    "layer1/output_b.rate": 0.14294,
    "layer1/output_b.rate_pad": 0.03194,
    "layer2/input.rate": 0.36324,
    "layer2/u.mean": 0.01933,
    "layer2/u.std": 0.7362,
    "layer2/input_b.rate": 0.36313,
    "layer2/u_b.mean": 0.00382,
    "layer2/u_b.std": 0.7689,
    "layer2/output.rate": 0.16035,
    "layer2/output.rate_pad": 0.03515,
    "layer2/output_b.rate": 0.1491,
    "layer2/output_b.rate_pad": 0.03385,
    "layer3/input.rate": 0.36494,
    "layer3/u.mean": 0.06455,
    "layer3/u.std": 0.82282,
    "layer3/input_b.rate": 0.36514,
    "layer3/u_b.mean": 0.01509,
    "layer3/u_b.std": 0.69087,
    "layer3/output.rate": 0.17942,
    "layer3/output.rate_pad": 0.03692,
    "layer3/output_b.rate": 0.15186,
    "layer3/output_b.rate_pad": 0.03772,
}

#: Rates average ~10^5-10^6 spikes: random-draw noise is ~10^-3 (the issue asks for 0.02).
RATE_TOLERANCE = 0.005
#: Membrane statistics and the loss.
VALUE_TOLERANCE = 0.01


def listops_statistics(data_dir: Path, args: list[str]) -> dict[str, float]:
    """Initial statistics of configs/lra/listops.yaml (seed 0) on the pinned batch."""
    torch.set_num_threads(2)
    _, batch = pin_batch(data_dir)
    side = ours_side(data_dir, PIN_SEED, Schedule(steps=1), args=args)
    return initial_statistics(side, batch)


def test_listops_model_starts_as_the_authors_does(tmp_path: Path) -> None:
    ours = listops_statistics(tmp_path, [])
    assert set(ours) == set(AUTHORS)
    for key, expected in AUTHORS.items():
        tolerance = RATE_TOLERANCE if "rate" in key else VALUE_TOLERANCE
        assert ours[key] == pytest.approx(expected, abs=tolerance), key


@pytest.mark.slow
def test_masking_output_padding_is_the_named_switch(tmp_path: Path) -> None:
    switch = "--model.backbone.init_args.block.mask_output_padding=true"
    ours = listops_statistics(tmp_path, [switch])
    padded = [key for key in AUTHORS if key.endswith("rate_pad")]
    assert padded and all(AUTHORS[key] > 0.02 for key in padded)  # theirs spike there
    assert all(ours[key] == 0.0 for key in padded)
