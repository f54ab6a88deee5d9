"""The command line end to end: configs, fit, checkpoints, resume, and config errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main, main
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[1]


def listops_args(tmp_path: Path, listops_dir: Path) -> list[str]:
    return [
        "--config",
        str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}",
        "--data.init_args.batch_size=16",
        *tiny_model_args(),
        *fast_trainer_args(tmp_path),
    ]


def test_fit_fast_dev_run_on_generated_listops(tmp_path: Path, listops_dir: Path) -> None:
    cli = cli_main(["fit", *listops_args(tmp_path, listops_dir), "--trainer.fast_dev_run=2"])
    model = cli.model
    # What the data decides is linked into the model.
    assert model.hparams.num_classes == 10
    assert model.backbone.encoder.num_embeddings == cli.datamodule.vocab_size
    assert model.backbone.decoder.out_features == 10
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_fit_writes_logs_config_checkpoints_and_resumes(tmp_path: Path, listops_dir: Path) -> None:
    args = [
        *listops_args(tmp_path, listops_dir),
        "--trainer.limit_train_batches=3",
        "--trainer.limit_val_batches=2",
    ]
    first = cli_main(["fit", *args, "--trainer.max_epochs=1"])
    run = Path(first.trainer.log_dir)
    assert run == tmp_path / "logs" / "quickstart" / "version_0"
    assert (run / "config.yaml").exists()
    assert list(run.glob("events.out.tfevents.*"))
    assert (run / "checkpoints" / "last.ckpt").exists()
    assert len(list((run / "checkpoints").glob("best-*.ckpt"))) == 1
    for key in ("train/loss", "val/loss", "val/acc", "val/acc_best"):
        assert key in first.trainer.callback_metrics, key

    resumed = cli_main(["fit", *args, "--trainer.max_epochs=2", "--ckpt_path=last"])
    # The same run folder continues: one more epoch on top of the first one's steps.
    assert Path(resumed.trainer.log_dir) == run
    assert resumed.trainer.current_epoch == 2
    assert resumed.trainer.global_step == 2 * first.trainer.global_step


def test_test_subcommand_and_checkpoint_reload(tmp_path: Path, listops_dir: Path) -> None:
    args = listops_args(tmp_path, listops_dir)
    fit = cli_main(["fit", *args, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"])
    checkpoint = Path(fit.trainer.log_dir) / "checkpoints" / "last.ckpt"
    test = cli_main(["test", *args, f"--ckpt_path={checkpoint}"])
    assert 0.0 <= float(test.trainer.callback_metrics["test/acc"]) <= 1.0
    # The checkpoint alone rebuilds the model, backbone included.
    reloaded = SequenceClassifier.load_from_checkpoint(checkpoint)
    torch.testing.assert_close(reloaded.backbone.decoder.weight, fit.model.backbone.decoder.weight)


def test_unknown_config_key_is_an_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "configs" / "quickstart.yaml").read_text() + "\nmodle:\n  lr: 0.1\n")
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(bad)])
    assert "modle" in capsys.readouterr().err


def test_help_lists_the_data_tools(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "make-listops" in capsys.readouterr().out
