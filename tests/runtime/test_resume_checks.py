"""The comparisons a checkpoint must pass: architecture settings and optimiser settings."""

from __future__ import annotations

import pytest

from pspikessm.models.architecture import check_architecture, setting_differences
from pspikessm.runtime.resume_checks import check_optimizer


def test_differences_name_each_key_path_in_nested_settings():
    saved = {"d_model": 64, "block": {"d_state": 16, "neuron_args": {"beta": 0.9}}, "norm": "batch"}
    current = {
        "d_model": 32,
        "block": {"d_state": 16, "neuron_args": {"beta": 0.5}},
        "norm": "batch",
    }
    assert setting_differences(saved, current) == [
        "block.neuron_args.beta: checkpoint 0.9, model 0.5",
        "d_model: checkpoint 64, model 32",
    ]


def test_unset_options_equal_each_other_and_sequences_compare_by_items():
    assert setting_differences({"kernel_args": None}, {"kernel_args": {}}) == []
    assert setting_differences({"betas": (0.9, 0.99)}, {"betas": [0.9, 0.99]}) == []
    assert setting_differences({}, {"x": None}) == []
    # An option set on one side only is a difference (its default may not be that value).
    assert setting_differences({"kernel_args": {"shared": False}}, {"kernel_args": None}) == [
        "kernel_args.shared: checkpoint False, model None"
    ]
    assert setting_differences({"a": {"b": 1}}, {"a": 3}) == ["a: checkpoint {'b': 1}, model 3"]


def test_architecture_error_names_the_settings_and_the_way_out():
    with pytest.raises(
        ValueError, match=r"ckpt/last.ckpt.*d_model: checkpoint 64, model 32.*config.yaml"
    ):
        check_architecture({"d_model": 64}, {"d_model": 32}, "ckpt/last.ckpt")
    check_architecture({"d_model": 64}, {"d_model": 64})
    check_architecture(None, {"d_model": 64})  # a backbone that records no settings


def test_optimizer_settings_decide_between_error_reset_and_restore():
    saved = {
        "optimizer0": {"class": "AdamW", "groups": {"0": {"lr": 0.004, "betas": (0.9, 0.999)}}}
    }
    changed = {
        "optimizer0": {"class": "AdamW", "groups": {"0": {"lr": 0.001, "betas": (0.9, 0.999)}}}
    }
    assert check_optimizer(saved, saved, reset=False) is False
    assert check_optimizer(saved, saved, reset=True) is False  # a requeued resume: nothing to do
    assert check_optimizer(None, changed, reset=False) is False  # an older checkpoint
    assert check_optimizer(saved, changed, reset=True) is True
    with pytest.raises(
        ValueError, match=r"optimizer0.groups.0.lr: checkpoint 0.004, config 0.001.*reset_optimizer"
    ):
        check_optimizer(saved, changed, reset=False)
