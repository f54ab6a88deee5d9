"""Resume from last.ckpt: same run folder, same weights and metrics as an uninterrupted run;
preemption (SIGTERM/SIGUSR1) at any point saves a resumable last.ckpt and exits with 75."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from helpers.cli_args import toy_quickstart_args
from pspikessm.cli import cli_main, main
from pspikessm.runtime.callbacks import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]


def run_args(listops_dir: Path, tmp_path: Path, max_epochs: int) -> list[str]:
    """The toy quickstart; ``total_steps`` fixed: the schedule must not depend on where a run
    stops."""
    return toy_quickstart_args(listops_dir, tmp_path, max_epochs, total_steps=12)


def run_dir(tmp_path: Path, version: int = 0) -> Path:
    return tmp_path / "logs" / "quickstart" / f"version_{version}"


def last_checkpoint(tmp_path: Path, version: int = 0) -> dict:
    return torch.load(run_dir(tmp_path, version) / "checkpoints" / "last.ckpt", weights_only=True)


def assert_same_training_state(actual: dict, expected: dict) -> None:
    assert actual["global_step"] == expected["global_step"]
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(actual["state_dict"][name], tensor), name
    # The spike stream continued where it stopped (it was saved in the checkpoint).
    assert torch.equal(actual["rng_state"]["torch"], expected["rng_state"]["torch"])


@pytest.fixture
def uninterrupted(listops_dir, tmp_path):
    """Two epochs without interruption: (checkpoint, final callback metrics)."""
    whole = cli_main(run_args(listops_dir, tmp_path / "whole", max_epochs=2))
    return last_checkpoint(tmp_path / "whole"), whole.trainer.callback_metrics


def test_resumed_run_equals_uninterrupted_run(listops_dir, tmp_path, uninterrupted):
    parts = tmp_path / "parts"
    cli_main(run_args(listops_dir, parts, max_epochs=1))
    resumed = cli_main([*run_args(listops_dir, parts, max_epochs=2), "--ckpt_path", "last"])

    # Same run folder (no version_1), two epochs done there.
    assert not run_dir(parts, 1).exists()
    assert resumed.trainer.logger.version == 0
    expected, whole_metrics = uninterrupted
    assert expected["global_step"] == 12  # last.ckpt every epoch
    assert_same_training_state(last_checkpoint(parts), expected)
    # The second epoch's metrics, val/acc_best over both epochs included.
    resumed_metrics = resumed.trainer.callback_metrics
    assert set(whole_metrics) == set(resumed_metrics)
    for name, value in whole_metrics.items():
        assert torch.equal(resumed_metrics[name], value), name


class SendSignal(Callback):
    """Sends ``signum`` to this process during training step ``step`` or after the second
    batch of the validation at global step ``step``."""

    def __init__(self, signum: int, step: int, in_validation: bool = False) -> None:
        self.signum, self.step, self.in_validation = signum, step, in_validation

    def on_before_backward(self, trainer, *args) -> None:
        if not self.in_validation and trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        at_step = trainer.global_step == self.step and not trainer.sanity_checking
        if self.in_validation and at_step and batch_idx == 1:
            os.kill(os.getpid(), self.signum)


def preempted_fit(args: list[str], signal_callback: SendSignal) -> int:
    """``fit`` (``args`` without the subcommand) until the signal stops it; its exit status."""
    cli = cli_main(args[1:], run=False)
    cli.trainer.callbacks.insert(0, signal_callback)
    with pytest.raises(SystemExit) as stopped:  # Lightning's SIGTERMException
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)  # handlers restored
    return stopped.value.code


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "step", "in_validation", "saved_step"),
    [
        (signal.SIGUSR1, 7, False, 8),  # mid-epoch: the step in progress finishes
        (signal.SIGTERM, 5, False, 6),  # the epoch's last step: stops before its validation
        (signal.SIGTERM, 6, True, 6),  # inside the validation: it runs again on resume
    ],
)
def test_signal_saves_last_checkpoint_and_resume_equals_uninterrupted(
    listops_dir, tmp_path, uninterrupted, signum, step, in_validation, saved_step
):
    args = run_args(listops_dir, tmp_path, max_epochs=2)
    status = preempted_fit(args, SendSignal(signum, step, in_validation))
    assert status == PREEMPTED_EXIT_CODE
    assert last_checkpoint(tmp_path)["global_step"] == saved_step

    resumed = cli_main([*args, "--ckpt_path", "last"])
    assert resumed.trainer.logger.version == 0
    expected, whole_metrics = uninterrupted
    assert_same_training_state(last_checkpoint(tmp_path), expected)
    for name in ("val/acc", "val/loss", "val/acc_best", "train/acc", "train/loss_epoch"):
        assert torch.equal(resumed.trainer.callback_metrics[name], whole_metrics[name]), name
    # One last.ckpt, the newest state (not a stale one beside last-v1.ckpt).
    names = sorted(p.name for p in (run_dir(tmp_path) / "checkpoints").iterdir())
    assert [n for n in names if n.startswith("last")] == ["last.ckpt"]


def test_the_command_exits_with_75_when_preempted(listops_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PSPIKESSM_FAULT", "SIGTERM:train:2")
    args = run_args(listops_dir, tmp_path, max_epochs=1)
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--trainer.callbacks+=helpers.fault_injection.InjectFault"])
    assert stopped.value.code == PREEMPTED_EXIT_CODE
    assert last_checkpoint(tmp_path)["global_step"] == 3


def test_a_signal_before_training_writes_nothing(listops_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("PSPIKESSM_FAULT", "SIGTERM:sanity:0")
    args = run_args(listops_dir, tmp_path, max_epochs=1)
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--trainer.callbacks+=helpers.fault_injection.InjectFault"])
    assert stopped.value.code == PREEMPTED_EXIT_CODE
    assert list((tmp_path / "logs" / "quickstart").iterdir()) == []  # no run folder


@pytest.mark.slow
def test_a_resume_records_its_config_beside_the_first_and_a_failed_one_writes_nothing(
    listops_dir, tmp_path
):
    args = run_args(listops_dir, tmp_path, max_epochs=1)
    cli_main(args)
    run = run_dir(tmp_path)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}

    # Another architecture: refused, naming the setting, and the run folder is untouched.
    other = [*args, "--model.backbone.init_args.d_model=32", "--ckpt_path", "last"]
    with pytest.raises(ValueError, match=r"d_model: checkpoint 16, model 32"):
        cli_main(other)
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in run.rglob("*") if p.is_file()}
    assert after == before
    assert not run_dir(tmp_path, 1).exists()

    resumed = [*run_args(listops_dir, tmp_path, max_epochs=2), "--ckpt_path", "last"]
    cli_main(resumed)
    assert (run / "config.yaml").read_bytes() == before[run / "config.yaml"][1]
    second = (run / "config-attempt2.yaml").read_text()
    assert "max_epochs: 2" in second and "max_epochs: 1" in (run / "config.yaml").read_text()
    assert f"# from checkpoint {run / 'checkpoints' / 'last.ckpt'} (global step 6)" in second


@pytest.mark.slow
def test_a_new_run_refuses_a_run_folder_that_holds_one(listops_dir, tmp_path):
    args = [*run_args(listops_dir, tmp_path, max_epochs=1), "--trainer.logger.init_args.version=a"]
    cli_main([*args, "--ckpt_path", "last"])  # nothing to resume yet: a new run
    last = tmp_path / "logs" / "quickstart" / "a" / "checkpoints" / "last.ckpt"
    saved = last.read_bytes()
    with pytest.raises(FileExistsError, match=r"quickstart/a/checkpoints/last.ckpt exists.*last"):
        cli_main(args)
    assert last.read_bytes() == saved


@pytest.mark.slow
def test_slurm_requeue_still_happens_on_sigusr1(listops_dir, tmp_path, monkeypatch):
    # A SLURM step as Lightning detects it, and an scontrol that records its arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "scontrol.args"}\n')
    scontrol.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    slurm = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "pspikessm", "SLURM_JOB_ID": "4242",
             "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}  # fmt: skip
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)

    args = [
        *run_args(listops_dir, tmp_path, max_epochs=1),
        f"--trainer.default_root_dir={tmp_path}",
    ]
    status = preempted_fit(args, SendSignal(signal.SIGUSR1, step=2))
    assert status == PREEMPTED_EXIT_CODE
    assert (tmp_path / "scontrol.args").read_text().split() == ["requeue", "4242"]
    assert last_checkpoint(tmp_path)["global_step"] == 3


@pytest.mark.slow
def test_a_resume_with_another_batch_size_is_refused_mid_epoch_and_allowed_between(
    listops_dir, tmp_path, monkeypatch
):
    # Mid-epoch: SIGTERM in step 2 of 6 saves last.ckpt after 3 batches of 16.
    monkeypatch.setenv("PSPIKESSM_FAULT", "SIGTERM:train:2")
    args = run_args(listops_dir, tmp_path / "mid", max_epochs=1)
    with pytest.raises(SystemExit):
        main([*args, "--trainer.callbacks+=helpers.fault_injection.InjectFault"])
    monkeypatch.delenv("PSPIKESSM_FAULT")
    saved = last_checkpoint(tmp_path / "mid")
    with pytest.raises(ValueError, match=r"after 3 batches of data\.batch_size=16; this run has "
                       r"data\.batch_size=32\..*--data\.init_args\.batch_size 16"):  # fmt: skip
        cli_main([*args, "--data.init_args.batch_size=32", "--ckpt_path", "last"])
    # Refused before anything changed: the checkpoint stays, no attempt is recorded.
    assert last_checkpoint(tmp_path / "mid")["global_step"] == saved["global_step"] == 3
    assert not (run_dir(tmp_path / "mid") / "config-attempt2.yaml").exists()

    # At an epoch's end: the next epoch runs at the new size (96 examples: 3 steps of 32).
    args = run_args(listops_dir, tmp_path / "end", max_epochs=1)
    cli_main(args)
    resumed = cli_main(
        [*run_args(listops_dir, tmp_path / "end", max_epochs=2),
         "--data.init_args.batch_size=32", "--ckpt_path", "last"]
    )  # fmt: skip
    assert resumed.trainer.global_step == 6 + 3
