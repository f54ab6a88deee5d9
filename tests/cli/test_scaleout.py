"""Two-process DDP on CPU (gloo) from the presets, against one process on the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.strategies import DDPStrategy
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.data import ListOpsDataModule
from pspikessm.runtime.callbacks import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "configs" / "trainer"


def logged_scalars(run_dir: Path) -> dict[str, list[float]]:
    """Every scalar a TensorBoard run folder holds: tag → values in step order."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def run_args(listops_dir: Path, logs: Path) -> list[str]:
    """The quickstart at toy size: global batch 16 (6 steps), deterministic evaluation."""
    return [
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        "--model.eval_mode=expected",
        "--model.warmup_steps=2",
        "--trainer.max_epochs=1",
        f"--trainer.logger.init_args.save_dir={logs}",
        "--trainer.enable_model_summary=false",
        "--trainer.callbacks+=helpers.ddp_probe.RankProbe",
        *tiny_model_args(),
    ]  # fmt: skip


@pytest.mark.slow
def test_ddp_two_processes_match_the_global_batch(listops_dir, tmp_path, monkeypatch):
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}")
    env["PSPIKESSM_PROBE_DIR"] = str(tmp_path / "probe_ddp")
    ddp = [
        "--config", str(PRESETS / "ddp.yaml"),
        "--trainer.accelerator=cpu",  # gloo; SyncBatchNorm needs GPUs
        "--trainer.devices=2",
        "--trainer.sync_batchnorm=false",
        "--trainer.precision=32-true",
    ]  # fmt: skip
    command = [sys.executable, "-m", "pspikessm", "fit"]
    result = subprocess.run(
        [*command, *run_args(listops_dir, tmp_path / "ddp"), *ddp],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    ranks = [json.loads((tmp_path / "probe_ddp" / f"rank{r}.json").read_text()) for r in (0, 1)]

    # One process on the same data, in this process.
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    monkeypatch.setenv("PSPIKESSM_PROBE_DIR", str(tmp_path / "probe_one"))
    single_args = [*run_args(listops_dir, tmp_path / "one"), "--config", str(PRESETS / "cpu.yaml")]
    cli_main(["fit", *single_args])
    single = json.loads((tmp_path / "probe_one" / "rank0.json").read_text())

    # Each process loads half of the global batch.
    assert [r["world_size"] for r in ranks] == [2, 2] and single["world_size"] == 1
    assert [r["per_process_batch"] for r in ranks] == [8, 8] and single["per_process_batch"] == 16
    # Identical initialisation everywhere, and identical weights after training (DDP).
    assert (
        ranks[0]["weights_at_start"] == ranks[1]["weights_at_start"] == single["weights_at_start"]
    )
    assert ranks[0]["weights_at_end"] == ranks[1]["weights_at_end"]
    # Different spike streams per process.
    assert ranks[0]["next_draws"] != ranks[1]["next_draws"]

    # The metrics DDP logged are those of the whole validation set: one process evaluating
    # the same weights (the DDP run's last.ckpt) logs the same values.
    ddp_run = tmp_path / "ddp" / "quickstart" / "version_0"
    ddp_logged = logged_scalars(ddp_run)
    validate = cli_main(
        [
            "validate", *single_args, *fast_trainer_args(tmp_path / "check"),
            f"--ckpt_path={ddp_run / 'checkpoints' / 'last.ckpt'}",
        ],
    )  # fmt: skip
    check = validate.trainer.callback_metrics
    assert ddp_logged["val/acc"][-1] == pytest.approx(float(check["val/acc"]), abs=1e-6)
    assert ddp_logged["val/loss"][-1] == pytest.approx(float(check["val/loss"]), rel=1e-5)
    assert len(ddp_logged["train/loss_epoch"]) == 1


@pytest.mark.parametrize("preset", sorted(PRESETS.glob("*.yaml")), ids=lambda p: p.name)
def test_trainer_presets_combine_with_a_task_config(preset, listops_dir, tmp_path):
    cli = cli_main(
        [
            "--config", str(ROOT / "configs" / "quickstart.yaml"),
            "--config", str(preset),
            f"--data.init_args.data_dir={listops_dir}",
            *tiny_model_args(),
            *fast_trainer_args(tmp_path),  # CPU here; the presets' GPU settings stay otherwise
        ],
        run=False,
    )  # fmt: skip
    settings = yaml.safe_load(preset.read_text())["trainer"]
    assert cli.trainer.num_nodes == settings["num_nodes"]
    assert cli.trainer.precision == settings.get("precision", "32-true")
    distributed = settings["strategy"] == "ddp"
    assert isinstance(cli.trainer.strategy, DDPStrategy) == distributed


def test_batch_size_not_divisible_by_processes_fails_at_setup(listops_dir):
    class TwoProcesses:  # what the data module reads from its trainer
        world_size = 3
        global_rank = 0

    data = ListOpsDataModule(data_dir=listops_dir, batch_size=16)
    data.trainer = TwoProcesses()
    with pytest.raises(ValueError, match=r"data.batch_size=16 .* divisible .* \(3\)"):
        data.setup("fit")
    data = ListOpsDataModule(data_dir=listops_dir, batch_size=12, eval_batch_size=10)
    data.trainer = TwoProcesses()
    with pytest.raises(ValueError, match=r"data.batch_size=10"):
        data.setup("validate")


def test_one_process_shuffle_depends_on_seed_and_epoch_only(listops_dir):
    data = ListOpsDataModule(data_dir=listops_dir, batch_size=16)
    data.setup("fit")

    def epoch_order(epoch: int) -> torch.Tensor:
        loader = data.train_dataloader()  # a fresh loader, as after a resume
        loader.sampler.set_epoch(epoch)
        return torch.cat([targets for _, _, targets in loader])

    assert torch.equal(epoch_order(1), epoch_order(1))
    assert not torch.equal(epoch_order(0), epoch_order(1))


@pytest.mark.slow
def test_ddp_processes_stop_together_when_one_is_signalled(listops_dir, tmp_path):
    """SIGTERM reaches process 1 only: both save one last.ckpt and exit 75; the run resumes."""
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT / 'tests'}")
    env["PSPIKESSM_PROBE_DIR"] = str(tmp_path / "probe")
    command = [
        sys.executable, "-m", "pspikessm", "fit", *run_args(listops_dir, tmp_path / "logs"),
        "--config", str(PRESETS / "ddp.yaml"),
        "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.sync_batchnorm=false",
        "--trainer.precision=32-true", "--trainer.logger.init_args.version=run",
        "--ckpt_path=last",
    ]  # fmt: skip
    last = tmp_path / "logs" / "quickstart" / "run" / "checkpoints" / "last.ckpt"
    faulty = {**env, "PSPIKESSM_FAULT": "SIGTERM:train:3:1"}
    stopped = subprocess.run(
        [*command, "--trainer.callbacks+=helpers.fault_injection.InjectFault"],
        env=faulty, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == 4
    resumed = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert torch.load(last, weights_only=True)["global_step"] == 6
