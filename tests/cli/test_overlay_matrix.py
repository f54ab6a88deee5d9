"""Every model overlay (and the meaningful pairs of them) on every task config: ``fit`` with
``fast_dev_run`` on tiny real-layout files, then ``test``, with the configs' own callbacks
(firing rates, energy, run summary). An overlay that breaks on some task fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.cli_args import TINY_LISTOPS, fast_trainer_args, tiny_model_args
from helpers.task_configs import TASKS
from pspikessm.cli import cli_main
from pspikessm.data.listops_generator import write_listops

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OVERLAYS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
#: Overlays that make sense together: the non-spiking and LIF baselines on the S4D kernel,
#: and switches of the paper's block combined.
PAIRS = [
    ("nonspiking", "diag"),
    ("lif_ssm", "fast"),
    ("no_mixer", "diag"),
    ("relu_mixer", "one_branch"),
    ("independent_uniforms", "untied_dropout"),
]
COMBINATIONS = [(name,) for name in OVERLAYS] + PAIRS
ALL_TASKS = {
    "lra/listops.yaml": (lambda d: write_listops(d / "listops-1000", TINY_LISTOPS), []),
    **TASKS,
}


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """One tiny data folder per task, shared by every overlay."""
    folders = {}
    for config, (write, _) in ALL_TASKS.items():
        folder = tmp_path_factory.mktemp(config.replace("/", "_").removesuffix(".yaml"))
        write(folder)
        folders[config] = folder
    return folders


def test_overlays_are_all_in_the_matrix():
    assert {name for combination in COMBINATIONS for name in combination} == set(OVERLAYS)


#: Tasks of 16k steps: the LIF loop over them takes 20-40 s a run, so those cases are `slow`.
LONG = ("lra/pathx.yaml", "speech/sc10.yaml", "speech/sc35.yaml")
CASES = [
    pytest.param(
        config,
        overlays,
        marks=[pytest.mark.slow] if config in LONG and "lif_ssm" in overlays else [],
        id=f"{'+'.join(overlays)}-{config}",
    )
    for overlays in COMBINATIONS
    for config in sorted(ALL_TASKS)
]


@pytest.mark.parametrize(("config", "overlays"), CASES)
def test_overlay_fits_and_tests_on_task(config, overlays, task_data, tmp_path):
    common = [
        f"--config={CONFIGS / config}",
        *[f"--config={CONFIGS / 'model' / f'{name}.yaml'}" for name in overlays],
        f"--data.data_dir={task_data[config]}",
        "--data.batch_size=4",
        "--data.num_workers=0",
        f"--checkpoint.dirpath={tmp_path / 'checkpoints'}",
        *tiny_model_args(d_model=8, d_state=4, n_layers=1),
        *fast_trainer_args(tmp_path),
        *ALL_TASKS[config][1],
    ]
    fit = cli_main(["fit", *common, "--trainer.fast_dev_run=1"])
    assert fit.trainer.state.finished and "train/loss" in fit.trainer.callback_metrics
    fit.trainer.test(fit.model, datamodule=fit.datamodule, verbose=False)  # one batch
    metrics = fit.trainer.callback_metrics
    assert "test/acc" in metrics and metrics["energy/total/nj"] > 0
    spiking = "nonspiking" not in overlays
    assert any(key.startswith("sparsity/test/") for key in metrics) == spiking
