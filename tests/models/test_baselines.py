"""Baselines and ablations: each trains in the shared pipeline; overlays select them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.data.tasks.listops import ListOpsDataModule
from pspikessm.models import BlockSettings, PSpikeSSM, PSpikeSSMBlock, spike_emitters
from pspikessm.models.neurons.binary import HeavisideSpike
from pspikessm.models.neurons.lif import LIFNeuron
from pspikessm.models.neurons.pspike import SpikeSampler
from pspikessm.models.neurons.real_valued import RealValued
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[2]

VARIANTS = {
    "pspike": {},
    "fast": {"kernel": "diag", "second_branch": False},
    "s4": {"neuron": "real"},
    "s4d": {"neuron": "real", "kernel": "diag"},
    "binary_s4d": {"neuron": {"name": "binary", "init_args": {"threshold": 0.5}}, "kernel": "diag"},
    "lif_ssm": {
        "neuron": {
            "name": "lif",
            "init_args": {
                "beta": 0.9,
                "threshold": 1.0,
                "reset": "subtract",
                "surrogate": "arctan",
            },
        }
    },
    "no_mixer": {"mixer": "none", "second_branch": False},
    "relu_mixer": {"mixer": "relu"},
}


@pytest.mark.parametrize(
    "variant",
    # 30 training steps each: the paper's model in the fast tier, every variant in the slow one.
    [v if v == "pspike" else pytest.param(v, marks=pytest.mark.slow) for v in VARIANTS],
)
def test_each_baseline_trains_on_tiny_listops(variant: str, listops_dir: Path) -> None:
    """A few dozen AdamW steps on a tiny generated ListOps set lower the training loss."""
    torch.manual_seed(0)
    data = ListOpsDataModule(data_dir=listops_dir, max_length=48, batch_size=16, num_workers=0)
    data.setup("fit")
    backbone = PSpikeSSM(
        num_classes=data.num_classes,
        vocab_size=data.vocab_size,
        d_model=16,
        n_layers=1,
        block=BlockSettings(d_state=8, **VARIANTS[variant]),
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
        block = BlockSettings(d_state=4, **options)
        model = PSpikeSSM(num_classes=2, vocab_size=5, d_model=4, n_layers=1, block=block)
        return {type(m) for _, m in spike_emitters(model)}

    assert kinds() == {SpikeSampler}
    assert kinds(neuron="binary") == {HeavisideSpike}
    assert kinds(neuron="lif") == {LIFNeuron}
    assert kinds(neuron="real") == set()
    block = PSpikeSSMBlock(4, BlockSettings(d_state=4, neuron="real"))
    assert isinstance(block.branches[0].input_spikes, RealValued)
    names = [name for name, _ in spike_emitters(PSpikeSSMBlock(4, BlockSettings(d_state=4)))]
    assert names == [
        "branches.0.input_spikes",
        "branches.0.output_spikes",
        "branches.1.input_spikes",
        "branches.1.output_spikes",
    ]


def test_bad_switches_name_the_valid_choices() -> None:
    def block(**options) -> PSpikeSSMBlock:
        return PSpikeSSMBlock(4, BlockSettings(d_state=4, **options))

    with pytest.raises(
        ValueError, match=r"block.neuron='izh'.*'binary', 'lif', .*'pspike', 'real'"
    ):
        block(neuron="izh")
    with pytest.raises(ValueError, match=r"block.neuron='no.such.Neuron': cannot import"):
        block(neuron="no.such.Neuron")
    with pytest.raises(ValueError, match=r"block.kernel='s5'.*\['diag', 'dplr'\]"):
        block(kernel="s5")
    with pytest.raises(ValueError, match=r"block.mixer='tanh'"):
        block(mixer="tanh")
    with pytest.raises(ValueError, match="second_branch needs a mixer"):
        block(mixer="none", second_branch=True)
    with pytest.raises(
        ValueError, match=r"block.neuron.init_args=\{'tau': 2.0\} do not fit block.neuron='lif'"
    ):
        block(neuron={"name": "lif", "init_args": {"tau": 2.0}})
    with pytest.raises(
        ValueError,
        match=r"block.kernel.init_args=\{'shared': False\} do not fit block.kernel='diag'",
    ):
        block(kernel={"name": "diag", "init_args": {"shared": False}})
    with pytest.raises(ValueError, match=r"block.kernel=\{'class': 'diag'\}: expected a name"):
        block(kernel={"class": "diag"})
    with pytest.raises(ValueError, match="unknown LIF surrogate 'sigmoid'"):
        LIFNeuron(surrogate="sigmoid")


#: configs/model/*.yaml → the block settings each one sets (the baselines' as trained above).
OVERLAYS = {
    "fast": VARIANTS["fast"],
    "diag": {"kernel": "diag"},
    "dplr": {"kernel": "dplr"},
    "one_branch": {"second_branch": False},
    "independent_uniforms": {"share_uniforms": False},
    "untied_dropout": {"tie_dropout": False},
    "nonspiking": VARIANTS["s4"],
    **{name: VARIANTS[name] for name in ("binary_s4d", "lif_ssm", "no_mixer", "relu_mixer")},
    "live_neurons": {"neuron": {"name": "normalized_pspike", "init_args": {"offset": -0.25}}},
}


@pytest.mark.slow  # a fit per overlay; the overlay matrix is slow too
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
        block = cli.config.model.backbone.init_args.block
        assert block.two_sided is True, name
        assert cli.model.backbone.settings["d_model"] == 16, name
        for key, value in expected.items():
            assert block[key] == value, (name, key)


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
