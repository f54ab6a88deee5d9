"""The forking guide's neuron and kernel sections: each is one new file, chosen by its import
path in YAML, and the quickstart config trains with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli_args import fast_trainer_args
from helpers.forking_guide import guide_block
from pspikessm.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("section", "module"),
    [
        ("## Add a neuron", "my_neurons"),
        # The kernel trains the DPLR-sized path (a few seconds): slow tier.
        pytest.param("## Add an SSM kernel", "my_kernels", marks=pytest.mark.slow),
    ],
)
def test_guide_neuron_and_kernel_train_by_class_path(section, module, tmp_path, monkeypatch):
    (tmp_path / f"{module}.py").write_text(guide_block("python", section))
    (tmp_path / "overlay.yaml").write_text(guide_block("yaml", section))
    monkeypatch.syspath_prepend(str(tmp_path))
    cli = cli_main(
        [
            "fit",
            "--config",
            str(ROOT / "configs/quickstart.yaml"),
            "--config",
            str(tmp_path / "overlay.yaml"),
            f"--data.init_args.data_dir={tmp_path / 'listops'}",
            "--data.init_args.generate.num_train=64",
            "--data.init_args.generate.num_val=16",
            "--data.init_args.generate.num_test=16",
            "--trainer.fast_dev_run=2",
            f"--trainer.default_root_dir={tmp_path}",
            *fast_trainer_args(tmp_path),
        ]
    )
    assert cli.trainer.global_step == 2
    branch = cli.model.backbone.blocks[0].branches[0]
    built = branch.output_spikes if module == "my_neurons" else branch.ssm.kernel
    assert type(built).__module__ == module
