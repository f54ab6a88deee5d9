"""Baselines and ablations: each trains in the shared pipeline; overlays select them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.data.listops import ListOpsDataModule
from pspikessm.models.backbone import PSpikeSSM, spike_samplers
from pspikessm.models.binary_neuron import HeavisideSpike
from pspikessm.models.block import PSpikeSSMBlock
from pspikessm.models.lif_neuron import LIFNeuron
from pspikessm.models.neurons import RealValued
from pspikessm.models.spike_sampler import SpikeSampler
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[1]

VARIANTS = {
    "pspike": {},
    "s4d": {"neuron": "gelu"},
    "s4": {"neuron": "gelu", "kernel": "dplr"},
    "binary_s4d": {"neuron": "binary"},
    "lif_ssm": {"neuron": "lif"},
    "no_mixer": {"mixer": "none"},
    "relu_mixer_second_branch": {"mixer": "relu", "second_branch": True},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_baseline_trains_on_tiny_listops(variant: str, listops_dir: Path) -> None:
    """A few dozen AdamW steps on a tiny generated ListOps set lower the training loss."""
    torch.manual_seed(0)
    data = ListOpsDataModule(data_dir=listops_dir, max_length=48, batch_size=16, num_workers=0)
    data.setup("fit")
    backbone = PSpikeSSM(
        num_classes=data.num_classes,
        vocab_size=data.vocab_size,
        d_model=16,
        d_state=8,
        n_layers=1,
        **VARIANTS[variant],
    )
    model = SequenceClassifier(backbone, num_classes=data.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batches = list(data.train_dataloader())
    losses = []
    for step in range(30):
        inputs, lengths, targets = batches[step % len(batches)]
        loss = F.cross_entropy(model(inputs, lengths), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:6]) / 6, sum(losses[-6:]) / 6
    assert last < first - 0.15, (variant, first, last)


def test_spiking_modules_are_discoverable() -> None:
    def kinds(**options) -> set[type]:
        model = PSpikeSSM(num_classes=2, vocab_size=5, d_model=4, d_state=4, n_layers=1, **options)
        return {type(m) for _, m in spike_samplers(model)}

    assert kinds() == {SpikeSampler}
    assert kinds(neuron="binary") == {HeavisideSpike}
    assert kinds(neuron="lif") == {LIFNeuron}
    assert kinds(neuron="gelu") == set()
    block = PSpikeSSMBlock(4, 4, neuron="gelu")
    assert isinstance(block.fuse.input_spikes, RealValued)
    assert PSpikeSSMBlock(4, 4, second_branch=True).sampler_names() == [
        "fuse.input_spikes",
        "output_spikes",
        "output_spikes_b",
    ]


def test_bad_switches_name_the_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown neuron 'izh'.*'pspike', 'gelu', 'binary'"):
        PSpikeSSMBlock(4, 4, neuron="izh")
    with pytest.raises(ValueError, match=r"unknown mixer 'tanh'"):
        PSpikeSSMBlock(4, 4, mixer="tanh")
    with pytest.raises(ValueError, match="second_branch needs a mixer"):
        PSpikeSSMBlock(4, 4, mixer="none", second_branch=True)
    with pytest.raises(ValueError, match="bad neuron_args for neuron 'lif'"):
        PSpikeSSMBlock(4, 4, neuron="lif", neuron_args={"tau": 2.0})
    with pytest.raises(ValueError, match="unknown LIF surrogate 'sigmoid'"):
        LIFNeuron(surrogate="sigmoid")


OVERLAYS = {
    "s4d": {"neuron": "gelu"},
    "binary_s4d": {"neuron": "binary"},
    "lif_ssm": {"neuron": "lif"},
    "dplr": {"kernel": "dplr", "kernel_args": {"shared": True}},
    "no_mixer": {"mixer": "none"},
    "relu_mixer": {"mixer": "relu"},
    "second_branch": {"second_branch": True},
}


def test_model_overlays_select_their_model(listops_dir: Path, tmp_path: Path) -> None:
    """Every configs/model/*.yaml, applied after the task config, sets what it says and keeps
    the task's settings (here the ListOps config's two-sided kernels)."""
    assert {p.stem for p in (ROOT / "configs/model").glob("*.yaml")} == set(OVERLAYS)
    for name, expected in OVERLAYS.items():
        cli = cli_main(
            [
                "--config",
                str(ROOT / "configs/lra/listops.yaml"),
                "--config",
                str(ROOT / f"configs/model/{name}.yaml"),
                f"--data.init_args.data_dir={listops_dir}",
                *tiny_model_args(),
                *fast_trainer_args(tmp_path),
            ],
            run=False,
        )
        settings = cli.model.backbone.settings
        assert settings["bidirectional"] is True, name
        assert settings["d_model"] == 16, name
        for key, value in expected.items():
            assert settings[key] == value, (name, key)


def test_lif_overlay_fits_through_the_cli(listops_dir: Path, tmp_path: Path) -> None:
    cli_main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/lra/listops.yaml"),
            "--config",
            str(ROOT / "configs/model/lif_ssm.yaml"),
            f"--data.init_args.data_dir={listops_dir}",
            "--data.init_args.max_length=48",
            "--data.init_args.num_workers=0",
            "--trainer.fast_dev_run=2",
            f"--trainer.default_root_dir={tmp_path}",  # fast_dev_run drops the logger
            *tiny_model_args(),
            *fast_trainer_args(tmp_path),
        ]
    )
