"""Block settings: typed choices (checked for Python callers too), renamed built-in names that
still work for one release with a warning, and kernels checked where they are used."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pspikessm.models import (
    BlockSettings,
    PSpikeSSM,
    PSpikeSSMBlock,
    RealValued,
    spike_emitters,
    spike_samplers,
)
from pspikessm.models.architecture import check_checkpoint_architecture, save_architecture
from pspikessm.models.kernels.dplr import DPLRSSMKernel


@pytest.mark.parametrize("option, value", [("norm", "btach"), ("mixer", "tanh"), ("init", "legt")])
def test_a_value_outside_a_literal_choice_names_the_option_and_the_choices(option, value):
    with pytest.raises(ValueError, match=rf"block.{option}='{value}': expected one of \["):
        BlockSettings(**{option: value})


@pytest.mark.parametrize("choice", ["gelu", {"name": "gelu", "init_args": {}}])
def test_gelu_is_the_deprecated_name_of_the_real_neuron(choice):
    with pytest.warns(DeprecationWarning, match="block.neuron='gelu' is deprecated.*use 'real'"):
        settings = BlockSettings(d_state=4, neuron=choice)
    assert settings.neuron in ("real", {"name": "real", "init_args": {}})
    block = PSpikeSSMBlock(4, settings)
    assert isinstance(block.branches[0].input_spikes, RealValued)
    assert isinstance(block.branches[1].output_spikes, RealValued)


def test_a_checkpoint_of_the_gelu_neuron_loads_into_a_real_model():
    model = PSpikeSSM(
        num_classes=3, d_model=4, n_layers=1, block=BlockSettings(d_state=4, neuron="real")
    )
    checkpoint = {}
    save_architecture(checkpoint, model)
    old = copy.deepcopy(checkpoint)
    old["backbone_settings"]["block"]["neuron"] = "gelu"  # as saved before the rename
    check_checkpoint_architecture(old, model)  # no error
    old["backbone_settings"]["block"]["neuron"] = "pspike"  # another neuron is refused
    with pytest.raises(ValueError, match="block.neuron: checkpoint 'pspike', model 'real'"):
        check_checkpoint_architecture(old, model)


def test_spike_samplers_is_the_deprecated_name_of_spike_emitters():
    block = PSpikeSSMBlock(4, BlockSettings(d_state=4))
    with pytest.warns(DeprecationWarning, match=r"use spike_emitters\(\)"):
        old = spike_samplers(block)
    assert old == spike_emitters(block) and len(old) == 4  # both sites of both branches


def test_building_a_block_computes_no_kernel(monkeypatch):
    """The kernel is checked where it is used: an l_max kernel per block at construction
    would cost as much as a forward at the longest length."""
    calls = []
    forward = DPLRSSMKernel.forward
    monkeypatch.setattr(
        DPLRSSMKernel, "forward", lambda self, n: calls.append(n) or forward(self, n)
    )
    kernel = {"name": "dplr", "init_args": {"l_max": 64}}
    block = PSpikeSSMBlock(4, BlockSettings(d_state=4, kernel=kernel))
    assert calls == []
    block(torch.rand(2, 4, 16))
    assert calls == [16, 16]  # one per branch, at the batch's length


class WrongShapeKernel(nn.Module):
    """Returns (C, H + 1, L) kernels: another interface than the block's."""

    def forward(self, length: int) -> torch.Tensor:
        return torch.zeros(1, 5, length)


def test_a_kernel_of_another_shape_fails_naming_the_option():
    block = PSpikeSSMBlock(4, BlockSettings(d_state=4, second_branch=False, mixer="gelu"))
    block.branches[0].ssm.kernel = WrongShapeKernel()
    with pytest.raises(
        ValueError,
        match=r"block.kernel \(.*WrongShapeKernel\): forward\(8\) gave shape \(1, 5, 8\), not \(1, 4, 8\)",
    ):
        block(torch.rand(2, 4, 8))
