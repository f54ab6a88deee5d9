"""Model overlays through ``fit`` (``fast_dev_run``) and ``test`` on tiny real-layout files, with
the configs' own callbacks (firing rates, energy, run summary): every overlay and the meaningful
pairs of them on the quickstart's task (ListOps, with the paper's block of lra/listops.yaml), and
the overlay x task cases whose code meets (listed in ``MEETINGS``, each with why).

Dropped from the full overlay x task product (161 CLI runs): an overlay changes only the block,
and the block sees every task as a (B, H, L) tensor with an optional padding mask, so a task adds
nothing for an overlay beyond the cases kept here. Every task with the paper's block is run by
tests/cli/test_task_configs.py; each overlay's settings are checked on its own by
tests/models/test_baselines.py (which also trains every neuron/kernel/mixer variant)."""

from __future__ import annotations

from contextlib import nullcontext
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
QUICKSTART_TASK = "lra/listops.yaml"
ALL_TASKS = {
    QUICKSTART_TASK: (lambda d: write_listops(d / "listops-1000", TINY_LISTOPS), []),
    # sc10_authors: the model of sc10 on another split of the data; nothing new for overlays.
    **{config: task for config, task in TASKS.items() if config != "speech/sc10_authors.yaml"},
}
#: Overlay x task cases where the two meet in code, beyond the quickstart's task.
MEETINGS = [
    # Two-document inputs: both documents through the same stateful LIF neuron / non-spiking
    # block, the retrieval head's energy counted once per pair, sparsity of a pair batch.
    (("lif_ssm",), "lra/retrieval.yaml"),
    (("nonspiking",), "lra/retrieval.yaml"),
    # One-sided (causal) kernels: only the sMNIST and speech configs keep two_sided false, so
    # the diagonal kernel's causal path with an overlay's kernel reset is reached only here.
    (("diag",), "mnist/smnist.yaml"),
    # The overlay's kernel_args reset drops the config's l_max: the DPLR kernel then takes the
    # dense matrix power at 16k steps, and the config's per-neuron (shared: false) kernels go.
    (("dplr",), "lra/pathx.yaml"),
    # The LIF loop is sequential: 16k steps of real-valued speech input.
    (("lif_ssm",), "speech/sc10.yaml"),
]
RUNS = [(combination, QUICKSTART_TASK) for combination in COMBINATIONS] + MEETINGS


@pytest.fixture(scope="module")
def task_data(tmp_path_factory) -> dict[str, Path]:
    """One tiny data folder per task in the matrix, shared by every overlay."""
    folders = {}
    for config in sorted({config for _, config in RUNS}):
        write = ALL_TASKS[config][0]
        folder = tmp_path_factory.mktemp(config.replace("/", "_").removesuffix(".yaml"))
        write(folder)
        folders[config] = folder
    return folders


def test_overlays_are_all_in_the_matrix():
    assert {name for combination in COMBINATIONS for name in combination} == set(OVERLAYS)
    assert all(config in ALL_TASKS for _, config in MEETINGS)


#: Each case is a full CLI fit and test: the slow tier.
CASES = [
    pytest.param(config, overlays, marks=pytest.mark.slow, id=f"{'+'.join(overlays)}-{config}")
    for overlays, config in RUNS
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
    spiking = "nonspiking" not in overlays
    # The configs' FiringRateMonitor says once per stage that a non-spiking model logs nothing.
    expected_warning = (
        nullcontext() if spiking else pytest.warns(UserWarning, match="no spiking layers")
    )
    with expected_warning:
        fit = cli_main(["fit", *common, "--trainer.fast_dev_run=1"])
        assert fit.trainer.state.finished and "train/loss" in fit.trainer.callback_metrics
        fit.trainer.test(fit.model, datamodule=fit.datamodule, verbose=False)  # one batch
    metrics = fit.trainer.callback_metrics
    assert "test/acc" in metrics and metrics["energy/total/nj"] > 0
    assert any(key.startswith("sparsity/test/") for key in metrics) == spiking
