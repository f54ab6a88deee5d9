"""Every task config parses and runs ``fit`` with ``fast_dev_run`` on tiny real-layout files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from task_files import (
    full_and_short_clips,
    random_mnist,
    tone_clips,
    write_aan,
    write_cifar,
    write_imdb,
    write_pathfinder,
    write_speech,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

#: config → (writer of its tiny data set, extra overrides)
TASKS = {
    "lra/text.yaml": (lambda d: write_imdb(d, per_class=4), ["--data.min_freq=1"]),
    "lra/retrieval.yaml": (lambda d: write_aan(d, rows=8), []),
    "lra/image.yaml": (lambda d: write_cifar(d, per_batch=4), ["--data.val_fraction=0.2"]),
    "lra/pathfinder.yaml": (lambda d: write_pathfinder(d, 32, count=20), []),
    "lra/pathx.yaml": (lambda d: write_pathfinder(d, 128, count=10), []),
    "mnist/smnist.yaml": (lambda d: random_mnist(d, 24, 8), ["--data.val_fraction=0.25"]),
    "mnist/psmnist.yaml": (lambda d: random_mnist(d, 24, 8), ["--data.val_fraction=0.25"]),
    "speech/sc10.yaml": (lambda d: write_speech(d, tone_clips(["yes", "no"], 4)), []),
    "speech/sc35.yaml": (lambda d: write_speech(d, tone_clips(["bed", "cat"], 4)), []),
    "speech/sc10_authors.yaml": (
        lambda d: write_speech(d, full_and_short_clips({"yes": 8, "no": 8})),
        [],
    ),
}


def test_every_task_config_is_tested():
    assert sorted(TASKS) == sorted(
        str(p.relative_to(CONFIGS))
        for p in CONFIGS.glob("*/*.yaml")
        # ListOps is tested in test_cli.py; trainer presets and model overlays are not tasks.
        if p.name != "listops.yaml" and p.parent.name not in ("trainer", "model")
    )


@pytest.mark.parametrize("config", sorted(TASKS))
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
