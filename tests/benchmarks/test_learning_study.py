"""The spiking-neuron study's pieces (benchmarks/parity/): the per-variant table, the site
swaps of the decomposition rows, and the deterministic stand-ins for the spike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks.parity.learning_runs import Variant, swap_sites
from benchmarks.parity.study_neurons import Clamp, HardTanh, NormalizedSampler, Relu
from benchmarks.parity.study_table import load_runs, study_markdown, study_rows
from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.models.neurons.normalized import (
    NormalizedSpikeSampler,
    normalized_drive_reference,
)
from pspikessm.models.neurons.pspike import SpikeSampler, sample_spikes_reference
from pspikessm.models.neurons.real_valued import RealValued


def _run(variant: str, seed: int, best: float, silent: float, loss: float) -> dict:
    return {
        "variant": variant,
        "items": [] if variant == "pspike" else [f"{variant}.yaml"],
        "seed": seed,
        "steps": 3000,
        "best_val_acc": best,
        "val_acc": best - 0.01,
        "val_acc_expected": best - 0.02,
        "firing_rate": math.nan if variant == "nonspiking" else 0.2,
        "train_cpu_s": 150.0,
        "evals": [
            {
                "train_loss": loss,
                "sparsity": {}
                if variant == "nonspiking"
                else {
                    "sparsity/val/layer0/input/silent": silent / 2,
                    "sparsity/val/layer0/output/silent": silent,
                    "sparsity/train/layer0/output/silent": 1.0,  # training: not counted
                },
            }
        ],
    }


def test_study_rows_average_seeds_and_measure_the_gap_to_the_twin(tmp_path: Path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(
        json.dumps(
            {
                "command": "python -m benchmarks.parity.learning --seeds 0 1",
                "date": "2026-12-05T14:00:00",
                "runs": {
                    "1": _run("nonspiking", 0, 0.47, math.nan, 1.3),
                    "2": _run("nonspiking", 1, 0.45, math.nan, 1.3),
                    "3": _run("pspike", 0, 0.37, 0.3, 1.7),
                },
            }
        )
    )
    second.write_text(
        json.dumps(
            {
                "command": "other",
                "runs": {
                    "1": _run("pspike", 1, 0.35, 0.4, 1.8),
                    "2": _run("pspike", 0, 0.99, 0.4, 1.8),  # seed 0 again: the first counts
                },
            }
        )
    )
    runs, sources = load_runs([first, second])
    rows = {row["name"]: row for row in study_rows(runs)}
    spiking = rows["pspike"]
    assert spiking["seeds"] == [0, 1] and spiking["caches"] == [0, 1]
    assert spiking["best_val_acc"] == pytest.approx(0.36)
    assert spiking["gap_points"] == pytest.approx(10.0)  # 0.46 - 0.36
    assert spiking["silent_max"] == pytest.approx(0.35)
    assert spiking["train_loss"] == pytest.approx(1.75)
    assert spiking["cpu_ms_per_step"] == pytest.approx(50.0)
    assert rows["nonspiking"]["gap_points"] == pytest.approx(0.0)
    table = study_markdown(list(rows.values()), sources)
    assert "| pspike | (configs/quickstart.yaml) | 0,1 | 0.360 ± 0.014 |" in table
    assert "[1] `other`" in table


def test_site_swaps_replace_one_site_in_every_branch():
    items = ["site.input=real", "site.output={name: normalized_pspike, init_args: {offset: 0}}"]
    variant = Variant("sites", [*items, "model.lr=0.01"])
    assert variant.cli_args() == ["--model.lr=0.01"]
    settings = BlockSettings(d_state=4, kernel="diag", second_branch=False)
    module = torch.nn.Module()
    module.backbone = PSpikeSSM(num_classes=2, vocab_size=5, d_model=6, n_layers=2, block=settings)
    swap_sites(module, variant.site_swaps())
    for block in module.backbone.blocks:
        branch = block.branches[0]
        assert isinstance(branch.input_spikes, RealValued)
        assert isinstance(branch.output_spikes, NormalizedSpikeSampler)
        assert branch.output_spikes.offset == 0 and branch.output_spikes.running_mean.shape == (6,)
    assert not any(isinstance(m, SpikeSampler) for m in module.modules())


def test_stand_ins_keep_one_property_of_the_firing_probability_each():
    x = torch.tensor([[-2.0, -0.5, 0.3, 0.9, 1.7]], requires_grad=True)
    torch.testing.assert_close(Clamp()(x), torch.tensor([[0.0, 0.0, 0.3, 0.9, 1.0]]))
    torch.testing.assert_close(HardTanh()(x), torch.tensor([[-1.0, -0.5, 0.3, 0.9, 1.0]]))
    torch.testing.assert_close(Relu()(x), torch.tensor([[0.0, 0.0, 0.3, 0.9, 1.7]]))
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0]])
    assert Relu()(x, mask)[0, -1] == 0
    assert HardTanh().firing_window == (-1.0, 1.0) and Relu().firing_window[1] == math.inf


def test_the_study_normalizer_adds_signed_spikes_several_draws_and_probabilities():
    torch.manual_seed(0)
    x = (torch.randn(2, 3, 30, dtype=torch.float64) * 2 + 1).requires_grad_()
    uniforms = torch.rand_like(x)
    signed = NormalizedSampler(3, scale=0.5, offset=0.0, signed=True).double().train()
    drive = normalized_drive_reference(x, None, None, None, 0.5, 0.0, signed.eps)
    reference = sample_spikes_reference(drive, None, uniforms, signed=True)
    spikes = signed(x, None, uniforms)
    torch.testing.assert_close(spikes, reference, rtol=0, atol=0)
    (grad,) = torch.autograd.grad(spikes.sum(), x)
    (grad_reference,) = torch.autograd.grad(reference.sum(), x)
    torch.testing.assert_close(grad, grad_reference)
    deterministic = NormalizedSampler(3, sample=False).double().train()
    drive = normalized_drive_reference(x, None, None, None, 1.0, -0.25, deterministic.eps)
    torch.testing.assert_close(deterministic(x), drive.clamp(0, 1))
    averaged = NormalizedSampler(3, samples=4).double().train()(x)
    assert set((averaged * 4).round().unique().tolist()) <= {0.0, 1.0, 2.0, 3.0, 4.0}
    assert ((averaged * 4) % 1 == 0).all() and ((averaged > 0) & (averaged < 1)).any()
