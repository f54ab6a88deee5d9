"""Changing the learning rate (or any optimiser setting) when resuming: an error that names the
setting, unless ``model.reset_optimizer`` asks for a fresh optimiser at the checkpoint's step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.optim import warmup_cosine_lambda

ROOT = Path(__file__).resolve().parents[2]


def fit_args(listops_dir: Path, tmp_path: Path, lr: float, max_epochs: int) -> list[str]:
    """Quickstart at toy size (6 steps per epoch), cosine schedule over 18 steps."""
    return [
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.generate=null",
        "--data.init_args.batch_size=16",
        f"--model.lr={lr}",
        "--model.warmup_steps=2",
        "--model.total_steps=18",
        f"--trainer.max_epochs={max_epochs}",
        "--trainer.limit_val_batches=1",
        "--trainer.callbacks=[]",
        "--trainer.enable_progress_bar=false",
        *fast_trainer_args(tmp_path),
        *tiny_model_args(),
    ]  # fmt: skip


class OptimizerAtStart(Callback):
    """What the resumed run trains with: the first group's rates, Adam's state, the weights."""

    def on_train_start(self, trainer, pl_module) -> None:
        optimizer = trainer.optimizers[0]
        group = optimizer.param_groups[0]
        self.lr, self.initial_lr = group["lr"], group["initial_lr"]
        self.moments = len(optimizer.state)
        self.weights = {k: v.clone() for k, v in pl_module.state_dict().items()}


def resume(args: list[str], checkpoint: Path) -> OptimizerAtStart:
    """``fit`` from ``checkpoint`` in run folder version_0 (what ``--ckpt_path last`` does)."""
    cli = cli_main([*args, "--trainer.logger.init_args.version=0"], run=False)
    probe = OptimizerAtStart()
    cli.trainer.callbacks.append(probe)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=checkpoint)
    return probe


@pytest.mark.slow
def test_a_new_learning_rate_is_refused_then_applied_with_reset_optimizer(listops_dir, tmp_path):
    cli_main(["fit", *fit_args(listops_dir, tmp_path, lr=0.004, max_epochs=1)])
    run = tmp_path / "logs" / "quickstart" / "version_0"
    last = run / "checkpoints" / "last.ckpt"
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}

    lower = fit_args(listops_dir, tmp_path, lr=0.001, max_epochs=2)
    with pytest.raises(
        ValueError, match=r"groups\.0\.lr: checkpoint 0\.004, config 0\.001.*reset_optimizer true"
    ):
        cli_main(["fit", *lower, "--ckpt_path=last"])
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files  # nothing written

    checkpoint = torch.load(last, weights_only=True)
    reset = resume([*lower, "--model.reset_optimizer=true"], last)
    # The new peak rate, scheduled at the checkpoint's step; no moments; the saved weights.
    assert reset.initial_lr == 0.001
    assert reset.lr == pytest.approx(0.001 * warmup_cosine_lambda(2, 18)(checkpoint["global_step"]))
    assert reset.moments == 0
    for name, tensor in checkpoint["state_dict"].items():
        assert torch.equal(reset.weights[name], tensor), name
    record = (run / "config-attempt2.yaml").read_text()
    assert "reset_optimizer: true" in record and "lr: 0.001" in record

    # A requeued job repeats the command: the optimiser already has these settings, so its
    # state (moments included) is restored rather than reset again.
    again = resume(
        [*fit_args(listops_dir, tmp_path, lr=0.001, max_epochs=3), "--model.reset_optimizer=true"],
        last,
    )
    assert again.initial_lr == 0.001 and again.moments > 0
