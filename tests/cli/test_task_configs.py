"""Every task config parses and runs ``fit`` with ``fast_dev_run`` on tiny real-layout files."""

from __future__ import annotations

import pytest

from helpers.cli_args import fast_trainer_args, tiny_model_args
from helpers.task_configs import CONFIGS, FAST_TASKS, TASKS
from pspikessm.cli import cli_main


def test_every_task_config_is_tested():
    assert sorted(TASKS) == sorted(
        str(p.relative_to(CONFIGS))
        for p in CONFIGS.glob("*/*.yaml")
        # ListOps is tested in test_cli.py; trainer presets and model overlays are not tasks.
        if p.name != "listops.yaml" and p.parent.name not in ("trainer", "model")
    )


@pytest.mark.parametrize(
    "config",
    [c if c in FAST_TASKS else pytest.param(c, marks=pytest.mark.slow) for c in sorted(TASKS)],
)
def test_config_fast_dev_run(tmp_path, config):
    write, extra = TASKS[config]
    data_dir = tmp_path / "data"
    write(data_dir)
    common = [
        f"--config={CONFIGS / config}",
        f"--data.data_dir={data_dir}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        # fast_dev_run swaps the logger for a dummy: without this, last.ckpt lands in ./checkpoints
        f"--checkpoint.dirpath={tmp_path / 'checkpoints'}",
        *tiny_model_args(d_model=8, d_state=4, n_layers=1),
        *fast_trainer_args(tmp_path),
        *extra,
    ]
    cli = cli_main(["fit", *common, "--trainer.fast_dev_run=true"])
    assert cli.trainer.state.finished
    assert "train/loss" in cli.trainer.callback_metrics
    assert cli.model.backbone.num_classes == cli.datamodule.num_classes
    assert cli.model.backbone.dual_input == (config == "lra/retrieval.yaml")
    # The test stage runs the config's sparsity and energy callbacks too.
    test = cli_main(["test", *common, "--trainer.limit_test_batches=1"])
    metrics = test.trainer.callback_metrics
    assert "test/acc" in metrics and "energy/total/nj" in metrics
    assert any(key.startswith("sparsity/test/") for key in metrics)
