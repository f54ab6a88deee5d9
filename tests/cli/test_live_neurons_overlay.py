"""configs/model/live_neurons.yaml composes with every task config: the model it builds draws
every spike site's spikes from the standardised drive (construction only, on stub data)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest

from helpers.cli_args import tiny_model_args
from helpers.task_configs import CONFIGS, TASKS
from pspikessm.cli import cli_main
from pspikessm.models.neurons import is_spike_source
from pspikessm.models.neurons.normalized import NormalizedSpikeSampler

OVERLAY = CONFIGS / "model" / "live_neurons.yaml"
#: A CLI parse costs about a second: the fast tier builds the quickstart, the paper's ListOps
#: block (two branches, DPLR), the two-document retrieval model and a causal speech model;
#: the slow tier every other task.
FAST = {"quickstart.yaml", "lra/listops.yaml", "lra/retrieval.yaml", "speech/sc10.yaml"}
TASK_CONFIGS = [
    pytest.param(task, marks=[] if task in FAST else [pytest.mark.slow], id=task)
    for task in sorted({"lra/listops.yaml", "quickstart.yaml", *TASKS})
]


class StubData(L.LightningDataModule):
    """Stands in for a task's data module: the model is built without the task's files."""

    num_classes = 3

    def __init__(self, **kwargs) -> None:
        super().__init__()


@pytest.mark.parametrize("task", TASK_CONFIGS)
def test_overlay_composes_with_every_task_config(task: str, tmp_path: Path):
    cli = cli_main(
        [
            "--config",
            str(CONFIGS / task),
            "--config",
            str(OVERLAY),
            f"--data={__name__}.StubData",
            *tiny_model_args(d_model=8, d_state=4),
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.num_nodes=1",
            "--trainer.strategy=auto",
            f"--trainer.default_root_dir={tmp_path}",
        ],
        run=False,
    )
    sites = [m for m in cli.model.modules() if is_spike_source(m)]
    assert sites and all(isinstance(m, NormalizedSpikeSampler) for m in sites)
    assert all(m.running_mean.shape == (8,) for m in sites)  # one statistic per neuron
