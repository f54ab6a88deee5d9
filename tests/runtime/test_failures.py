"""A non-finite loss stops training loudly and leaves the last good checkpoint in place."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers.cli_args import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main
from pspikessm.runtime.callbacks import NonFiniteLossError

ROOT = Path(__file__).resolve().parents[2]


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(listops_dir, tmp_path):
    cli = cli_main(
        [
            "--config", str(ROOT / "configs" / "quickstart.yaml"),
            f"--data.init_args.data_dir={listops_dir}",
            "--data.init_args.generate=null",
            "--data.init_args.batch_size=16",
            "--trainer.max_epochs=3",
            "--trainer.callbacks=[]",
            "--trainer.enable_progress_bar=false",
            *fast_trainer_args(tmp_path),
            *tiny_model_args(),
        ],
        run=False,
    )  # fmt: skip
    model = cli.model
    plain_step = model.training_step

    def poisoned_step(batch, batch_idx):  # the loss of global step 8 is NaN
        loss = plain_step(batch, batch_idx)
        return loss * float("nan") if model.trainer.global_step == 8 else loss

    model.training_step = poisoned_step
    with pytest.raises(NonFiniteLossError, match=r"global step 8 \(epoch 1, batch 2\).*last\.ckpt"):
        cli.trainer.fit(model, datamodule=cli.datamodule)

    # The bad step never reached the weights, and last.ckpt is the end of epoch 0.
    assert all(torch.isfinite(p).all() for p in model.parameters())
    last = tmp_path / "logs" / "quickstart" / "version_0" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    assert saved["global_step"] == 6
    assert all(
        torch.isfinite(t).all() for t in saved["state_dict"].values() if t.is_floating_point()
    )
