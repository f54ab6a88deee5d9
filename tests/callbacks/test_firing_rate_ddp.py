"""Two CPU processes (DDP, gloo) log the same global firing rates as one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.cli_args import tiny_model_args
from pspikessm.cli import cli_main

ROOT = Path(__file__).resolve().parents[2]


def validate(tmp_path: Path, listops_dir: Path, devices: int) -> dict[str, float]:
    """Run ``pspikessm validate`` (two devices: in a subprocess, as a user would); returns
    the sparsity/val scalars it logged."""
    save_dir = tmp_path / f"logs{devices}"
    args = [
        "validate",
        "--config",
        str(ROOT / "configs/quickstart.yaml"),
        *tiny_model_args(),
        f"--trainer.logger.init_args.save_dir={save_dir}",
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.eval_batch_size=8",  # global: 4 per process with two processes
        "--model.eval_mode=expected",  # deterministic probabilities: runs are comparable
        "--trainer.accelerator=cpu",
        f"--trainer.devices={devices}",
        f"--trainer.strategy={'ddp' if devices > 1 else 'auto'}",
        "--trainer.enable_model_summary=false",
    ]
    if devices == 1:
        cli_main(args)
    else:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
        env.pop("MASTER_PORT", None)
        command = [sys.executable, "-m", "pspikessm", *args]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    (events,) = save_dir.rglob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events)).Reload()
    return {
        tag: accumulator.Scalars(tag)[-1].value
        for tag in accumulator.Tags()["scalars"]
        if tag.startswith("sparsity/val/")
    }


@pytest.mark.slow
def test_two_processes_log_the_same_global_rates_as_one(tmp_path, listops_dir):
    single = validate(tmp_path, listops_dir, devices=1)
    double = validate(tmp_path, listops_dir, devices=2)
    assert "sparsity/val/layer0/output/rate" in single
    assert single.keys() == double.keys()
    for tag, value in single.items():
        # Same examples, different batches: only FFT rounding differs between the runs.
        assert double[tag] == pytest.approx(value, rel=1e-5, abs=1e-6), tag
