"""The parity benchmark's own pieces, without the authors' checkout (benchmarks/parity/)."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.authors import authors_vocabulary
from benchmarks.parity.ablations import MaskedBatchNorm1d
from benchmarks.parity.probes import OursProbe
from benchmarks.parity.sides import ParityData, Schedule, Side, accuracy, ours_cli
from benchmarks.parity.transfer import weight_map
from helpers.cli_args import tiny_model_args
from pspikessm.callbacks.spike_sources import spike_sources
from pspikessm.data.listops_generator import ListOpsGeneratorConfig, write_listops
from pspikessm.models import BlockSettings, PSpikeSSM

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_parity_without_checkout_skips(tmp_path: Path) -> None:
    for extra in ([], ["--authors", str(tmp_path)]):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.parity.run", *extra],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("skipped:"), done.stdout


def test_authors_vocabulary_is_torchtexts_order() -> None:
    counts = {"X": 5, "[SM": 2, "3": 5, "1": 9, "<eos>": 7}
    assert authors_vocabulary(counts) == ["<pad>", "<unk>", "<eos>", "1", "3", "X", "[SM"]


def test_masked_batchnorm_uses_only_valid_positions() -> None:
    torch.manual_seed(0)
    x = torch.randn(3, 4, 6)
    lengths = torch.tensor([6, 2, 4])
    mask = (torch.arange(6) < lengths[:, None]).unsqueeze(1).float()  # (B 1 L)
    masked = MaskedBatchNorm1d(4)
    masked.mask_source = types.SimpleNamespace(mask=mask)
    plain = nn.BatchNorm1d(4)
    valid = torch.cat([x[b, :, : int(n)] for b, n in enumerate(lengths)], dim=-1)  # (H T)
    expected = plain(valid.unsqueeze(0))[0]
    out = masked(x)
    got = torch.cat([out[b, :, : int(n)] for b, n in enumerate(lengths)], dim=-1)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(masked.running_mean, plain.running_mean)
    torch.testing.assert_close(masked.running_var, plain.running_var)
    masked.mask_source.mask = torch.ones(3, 1, 6)  # all valid: plain BatchNorm
    torch.testing.assert_close(masked(x), nn.BatchNorm1d(4)(x))


def test_parity_data_batches_and_tokens(tmp_path: Path) -> None:
    write_listops(
        tmp_path,
        ListOpsGeneratorConfig(
            num_train=50, num_val=8, num_test=8, min_length=3, max_length=30, max_depth=3
        ),
    )
    data = ParityData(tmp_path)
    plan = data.plan(seed=1, steps=7, batch=16)  # 3 full batches per epoch
    assert [len(b) for b in plan] == [16] * 7
    assert len(torch.cat(plan[:3]).unique()) == 48  # no example twice in an epoch
    assert all(torch.equal(a, b) for a, b in zip(plan, data.plan(1, 7, 16), strict=True))
    inputs, lengths, _ = data.collate(data.train, plan[0])
    assert inputs.shape == (16, int(lengths.max()))  # padded to the batch's longest
    assert bool((inputs[torch.arange(16), lengths - 1] == data.tokens.index("<eos>")).all())
    theirs = [data.authors_tokens[i] for i in data.to_authors[inputs[0, : lengths[0]]]]
    assert theirs == [data.tokens[i] for i in inputs[0, : lengths[0]]]  # same tokens
    assert data.checks()["data_specials_same_ids"] is True


def test_probe_names_every_spike_site_as_the_monitors_do() -> None:
    block = BlockSettings(d_state=4, two_sided=True)  # the paper's block: two branches
    backbone = PSpikeSSM(num_classes=3, vocab_size=12, d_model=8, n_layers=2, block=block)
    probe = OursProbe(backbone)
    backbone(torch.randint(0, 12, (2, 10)))
    sites = ("input", "input_b", "output", "output_b", "u", "u_b")
    assert set(probe.records) == {f"layer{i}/{site}" for i in (0, 1) for site in sites}
    assert probe.records["layer1/output_b"].shape == (2, 8, 10)
    spike_names = {name for name, _ in spike_sources(backbone)}
    assert spike_names == {name for name in probe.records if "/u" not in name}
    probe.remove()
    probe.records.clear()
    backbone(torch.randint(0, 12, (2, 10)))
    assert probe.records == {}  # every hook removed


def test_accuracy_reports_micro_and_macro(tmp_path: Path) -> None:
    write_listops(
        tmp_path,
        ListOpsGeneratorConfig(
            num_train=20, num_val=40, num_test=8, min_length=3, max_length=30, max_depth=3
        ),
    )
    data = ParityData(tmp_path)
    model = nn.Linear(1, 1)  # stands in: the forward below ignores it

    def always_zero(tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.zeros_like(lengths), 10).float()

    side = Side("ours", model, always_zero, torch.optim.SGD(model.parameters()), None)
    micro, macro = accuracy(side, data)
    targets = data.val.targets
    assert micro == pytest.approx(float((targets == 0).float().mean()))
    assert macro == pytest.approx(1 / len(targets.unique()))  # recall 1 for class 0, else 0


def test_weight_map_fills_every_parameter_of_the_listops_model(tmp_path: Path) -> None:
    config = ListOpsGeneratorConfig(
        num_train=8, num_val=4, num_test=4, min_length=3, max_length=20, max_depth=2
    )
    write_listops(tmp_path, config)
    cli = ours_cli(tmp_path, 0, Schedule(), args=tiny_model_args(n_layers=2))
    state = cli.model.backbone.state_dict()
    targets = list(weight_map(2).values())
    assert len(targets) == len(set(targets))  # no parameter written twice
    assert set(targets) == {n for n in state if not n.endswith("num_batches_tracked")}


def test_gradient_kinds_name_both_models_alike() -> None:
    from benchmarks.parity.diagnostics import kind_of

    pairs = {
        "backbone.layers.0.inp_b": "backbone.blocks.0.fuse.affines.0.shift",
        "backbone.layers.0.inp2_a": "backbone.blocks.0.fuse.affines.1.scale",
        "backbone.layers.1.out_a": "backbone.blocks.1.branches.0.output_affine.scale",
        "backbone.layers.2.reverse_layer.layer.kernel.C": "backbone.blocks.2.branches.1.ssm.kernel.c",
        "backbone.layers.3.bidirectional_linear.weight": "backbone.blocks.3.mixer.linear.weight",
        "backbone.layers.3.norm.norm.bias": "backbone.blocks.3.fuse.post_norm.bias",
    }
    kinds = [kind_of(theirs) for theirs in pairs]
    assert kinds == [kind_of(ours) for ours in pairs.values()]
    assert kinds == [
        "layer0.in_affine",
        "layer0.in_affine_b",
        "layer1.out_affine",
        "layer2.C_b",
        "layer3.mixer",
        "layer3.norm",
    ]
