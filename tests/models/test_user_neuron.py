"""A neuron of the user's own, defined outside src/ and chosen by class path in YAML, trains
the quickstart config, and the monitors find its spikes (issue: one obvious place per change)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from helpers.cli_args import fast_trainer_args
from pspikessm.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]

NEURON_MODULE = '''
"""A deterministic spiking neuron: 1[x > threshold], straight-through inside [0, 1]."""

import torch
from torch import nn


class ThresholdNeuron(nn.Module):
    emits_spikes = True  # the firing-rate monitor and the energy estimate look for this

    def __init__(self, threshold: float = 0.5) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, drive, mask=None, uniforms=None):
        window = drive.clamp(0.0, 1.0)
        spikes = window + ((drive > self.threshold).to(drive.dtype) - window).detach()
        return spikes if mask is None else spikes * mask
'''

OVERLAY = """
model:
  backbone:
    init_args:
      block:
        neuron:
          name: user_neurons.ThresholdNeuron
          init_args:
            threshold: 0.3
"""


def test_user_neuron_by_class_path_trains_and_is_monitored(tmp_path, monkeypatch):
    package = tmp_path / "user_code"
    package.mkdir()
    (package / "user_neurons.py").write_text(textwrap.dedent(NEURON_MODULE))
    monkeypatch.syspath_prepend(str(package))
    overlay = tmp_path / "neuron.yaml"
    overlay.write_text(OVERLAY)
    data_dir = tmp_path / "listops-quickstart"
    common = [
        "--config",
        str(ROOT / "configs/quickstart.yaml"),
        "--config",
        str(overlay),
        f"--data.init_args.data_dir={data_dir}",
        "--data.init_args.generate.num_train=64",
        "--data.init_args.generate.num_val=32",
        "--data.init_args.generate.num_test=32",
        "--data.init_args.generate.max_length=20",
        "--data.init_args.batch_size=16",
        *fast_trainer_args(tmp_path),
    ]
    fit = cli_main(["fit", *common, "--trainer.max_steps=4", "--trainer.max_epochs=1"])
    neuron = fit.model.backbone.blocks[0].branches[0].output_spikes
    assert type(neuron).__name__ == "ThresholdNeuron" and neuron.threshold == 0.3
    metrics = fit.trainer.callback_metrics
    for key in ("sparsity/val/layer0/input/rate", "sparsity/val/layer1/output/rate"):
        assert key in metrics, key
    checkpoint = fit.trainer.checkpoint_callback.last_model_path
    test = cli_main(["test", *common, f"--ckpt_path={checkpoint}"])
    metrics = test.trainer.callback_metrics
    assert 0 < metrics["sparsity/test/layer0/input/rate"] < 1
    for layer in ("layer0", "layer1"):  # its spikes are counted as accumulates, in every block
        assert metrics[f"energy/{layer}/ac"] > 0, layer
        assert metrics[f"energy/{layer}/nj"] < metrics[f"energy/{layer}/dense_nj"], layer
    assert metrics["energy/total/ac"] >= metrics["energy/layer0/ac"] + metrics["energy/layer1/ac"]
    assert metrics["energy/saving"] > 1
