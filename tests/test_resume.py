"""Resume from last.ckpt: same run folder, same weights and metrics as an uninterrupted run."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main

ROOT = Path(__file__).resolve().parents[1]


def run_args(listops_dir: Path, tmp_path: Path, max_epochs: int) -> list[str]:
    """Toy quickstart, 6 steps per epoch; spikes sampled in training and validation."""
    return [
        "fit",
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        "--model.warmup_steps=2",
        "--model.total_steps=12",  # the schedule must not depend on where a run stops
        f"--trainer.max_epochs={max_epochs}",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        *fast_trainer_args(tmp_path),
        *tiny_model_args(),
    ]  # fmt: skip


def last_checkpoint(tmp_path: Path, version: int = 0) -> dict:
    path = tmp_path / "logs" / "quickstart" / f"version_{version}" / "checkpoints" / "last.ckpt"
    return torch.load(path, weights_only=True)


def test_resumed_run_equals_uninterrupted_run(listops_dir, tmp_path):
    whole = cli_main(run_args(listops_dir, tmp_path / "whole", max_epochs=2))

    parts = tmp_path / "parts"
    cli_main(run_args(listops_dir, parts, max_epochs=1))
    resumed = cli_main([*run_args(listops_dir, parts, max_epochs=2), "--ckpt_path", "last"])

    # Same run folder (no version_1), two epochs done there.
    assert not (parts / "logs" / "quickstart" / "version_1").exists()
    assert resumed.trainer.logger.version == 0
    expected, actual = last_checkpoint(tmp_path / "whole"), last_checkpoint(parts)
    assert actual["global_step"] == expected["global_step"] == 12  # last.ckpt every epoch
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(actual["state_dict"][name], tensor), name
    # The spike stream continued where it stopped (it was saved in the checkpoint).
    assert torch.equal(actual["rng_state"]["torch"], expected["rng_state"]["torch"])
    # The second epoch's metrics, val/acc_best over both epochs included.
    whole_metrics = whole.trainer.callback_metrics
    resumed_metrics = resumed.trainer.callback_metrics
    assert set(whole_metrics) == set(resumed_metrics)
    for name, value in whole_metrics.items():
        assert torch.equal(resumed_metrics[name], value), name


class SendSignal(Callback):
    """Sends ``signum`` to this process after training step ``at_step``."""

    def __init__(self, signum: int, at_step: int) -> None:
        self.signum, self.at_step = signum, at_step

    def on_train_batch_end(self, trainer, *args) -> None:
        if trainer.global_step == self.at_step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGUSR1, signal.SIGTERM])
def test_signal_saves_last_checkpoint_and_resume_continues(listops_dir, tmp_path, signum):
    args = run_args(listops_dir, tmp_path, max_epochs=2)
    cli = cli_main(args[1:], run=False)  # without the subcommand
    cli.trainer.callbacks.insert(0, SendSignal(signum, at_step=8))
    with pytest.raises(SystemExit):  # Lightning's SIGTERMException
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    saved = last_checkpoint(tmp_path)
    assert saved["global_step"] == 8  # the step in progress finished, then it stopped
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None)  # handlers restored

    resumed = cli_main([*args, "--ckpt_path", "last"])
    assert resumed.trainer.logger.version == 0
    assert resumed.trainer.global_step == 12
    assert last_checkpoint(tmp_path)["global_step"] == 12
