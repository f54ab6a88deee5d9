"""RunSummary: hp_metric is the best val/acc so far (test/acc after test), the HPARAMS tab
gets it, the best epoch survives a resume, and fit ends with one short summary."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.cli_args import fast_trainer_args, tiny_model_args
from helpers.scripted_runs import TEST_ACCURACY, ScriptedAccuracy, loader
from helpers.spiking_doubles import ForcedSpikes, token_batches
from helpers.tensorboard_events import hparams, latest_text, load
from pspikessm.callbacks import FiringRateMonitor, RunSummary
from pspikessm.callbacks.hparams_table import COMPARED, METRICS
from pspikessm.callbacks.run_summary import (
    firing_rates_by_layer,
    format_duration,
    silent_site_warnings,
)
from pspikessm.cli import cli_main
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[2]


def trainer(tmp_path: Path, max_epochs: int, summary: RunSummary) -> L.Trainer:
    return L.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        logger=TensorBoardLogger(tmp_path, name="run", version=0),
        callbacks=[summary, ModelCheckpoint(monitor="val/acc", mode="max", save_last=True)],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )


def events(tmp_path: Path) -> EventAccumulator:
    return load(tmp_path / "run" / "version_0")


def test_hp_metric_is_the_best_val_acc_then_test_acc_and_hparams_name_it(
    tmp_path, capsys, monkeypatch
):
    # The seed column is Lightning's PL_GLOBAL_SEED: unset, as in a run that seeds nothing
    # (an earlier test in this process may have set it).
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    summary = RunSummary(hparams=[*COMPARED, "width"])
    fit = trainer(tmp_path, max_epochs=3, summary=summary)
    module = ScriptedAccuracy()
    fit.fit(module, loader(), loader())
    accumulator = events(tmp_path)
    values = [(e.step, pytest.approx(e.value)) for e in accumulator.Scalars("hp_metric")]
    # Lightning's placeholder, then the best so far after each validation epoch.
    assert values == [(0, -1.0), (2, 0.2), (4, 0.5), (6, 0.5)]

    printed = capsys.readouterr().out
    assert "best val/acc: 0.5000 at epoch 1" in printed
    assert f"run folder: {fit.log_dir}" in printed
    best = fit.checkpoint_callback.best_model_path
    assert f"best checkpoint: {best}" in printed and "epoch=1" in best
    assert f"last checkpoint: {fit.checkpoint_callback.last_model_path}" in printed
    assert "epochs trained: 3" in printed
    assert "- best val/acc: 0.5000 at epoch 1" in latest_text(accumulator, "run/summary")

    # The HPARAMS columns: the compared names this module has (none of COMPARED but task,
    # seed-less precision) plus an extra name asked for; the metric columns of METRICS.
    values, metrics = hparams(accumulator)
    assert metrics == list(METRICS)
    assert values == {"task": "run", "precision": "32-true", "width": 3.0}

    fit.test(module, loader(), verbose=False)
    assert events(tmp_path).Scalars("hp_metric")[-1].value == pytest.approx(TEST_ACCURACY)


def test_a_resumed_run_keeps_the_best_epoch(tmp_path, capsys):
    trainer(tmp_path, max_epochs=2, summary=RunSummary()).fit(
        ScriptedAccuracy(), loader(), loader()
    )
    last = tmp_path / "run" / "version_0" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    resumed = trainer(tmp_path, max_epochs=4, summary=RunSummary())
    # A resume writes into the run's own checkpoint folder, which Lightning remarks on.
    with pytest.warns(UserWarning, match="exists and is not empty"):
        resumed.fit(ScriptedAccuracy(), loader(), loader(), ckpt_path=last)
    assert "best val/acc: 0.5000 at epoch 1" in capsys.readouterr().out
    assert events(tmp_path).Scalars("hp_metric")[-1].value == pytest.approx(0.5)


def test_mode_min_tracks_the_smallest_value(tmp_path, capsys):
    summary = RunSummary(mode="min")
    trainer(tmp_path, max_epochs=3, summary=summary).fit(ScriptedAccuracy(), loader(), loader())
    assert (summary.best, summary.best_epoch) == (pytest.approx(0.2), 0)
    with pytest.raises(ValueError, match=r"RunSummary\(mode='largest'\)"):
        RunSummary(mode="largest")


def test_firing_rates_are_grouped_by_layer_from_the_tag_names():
    metrics = {
        "val/acc": torch.tensor(0.5),
        "sparsity/val/layer0/input/rate": torch.tensor(0.31849),
        "sparsity/val/layer0/output/rate": torch.tensor(0.1),
        "sparsity/val/layer0/input_b/rate": torch.tensor(0.2),
        "sparsity/val/layer1/output/rate": torch.tensor(0.05),
        "sparsity/val/layer0/input/silent": torch.tensor(0.0),
        "sparsity/val/rate": torch.tensor(0.2),
        "sparsity/train/layer0/input/rate": torch.tensor(0.9),
    }
    assert firing_rates_by_layer(metrics) == (
        "layer0: input 0.318, output 0.100, input_b 0.200; layer1: output 0.050"
    )
    assert firing_rates_by_layer({"val/acc": 1.0}) == ""


def test_the_summary_names_every_site_that_ends_with_many_silent_neurons(tmp_path, capsys):
    # layer0/input: 2 of 4 neurons never fire (drives 0 and -1); layer0/output: all fire.
    backbone = ForcedSpikes([([1.0, 0.5, 0.0, -1.0], [0.5, 0.5, 0.5, 0.5])])
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant")
    batches = token_batches([5, 3, 8, 1], batch_size=2)
    monitor = FiringRateMonitor(histograms=False, images=False)
    fit = trainer(tmp_path, max_epochs=1, summary=RunSummary())
    fit.callbacks.append(monitor)
    fit.fit(module, batches, batches)
    out = capsys.readouterr().out
    assert "warning: layer0/input ends with 50% of its neurons silent" in out
    assert "layer0/output ends" not in out
    assert silent_site_warnings({"sparsity/val/layer1/output/silent": torch.tensor(0.2)}) == []


def test_durations_read_naturally():
    assert format_duration(42.4) == "42 s"
    assert format_duration(185) == "3 min 05 s"
    assert format_duration(2 * 3600 + 3 * 60 + 20) == "2 h 03 min"


@pytest.mark.slow
def test_the_hparams_of_a_quickstart_run_compare_runs(tmp_path, listops_dir):
    """The HPARAMS tab of ``pspikessm fit/test --config configs/quickstart.yaml``: the compared
    hyperparameters, no _instantiator or class_path, and every metric column has a value."""
    args = [
        "--config", str(ROOT / "configs" / "quickstart.yaml"),
        f"--data.init_args.data_dir={listops_dir}", "--data.init_args.batch_size=16",
        *tiny_model_args(), *fast_trainer_args(tmp_path),
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
        "--trainer.limit_val_batches=1", "--trainer.limit_test_batches=1",
        "--trainer.logger.init_args.version=0",  # test logs into the fit's run folder
    ]  # fmt: skip
    cli_main(["fit", *args])
    cli_main(["test", *args, "--ckpt_path=last"])
    run = tmp_path / "logs" / "quickstart" / "version_0"
    accumulator = load(run)
    values, metrics = hparams(accumulator)
    assert not [name for name in values if "instantiator" in name or "class_path" in name]
    assert values == {
        "task": "quickstart", "lr": pytest.approx(0.012), "weight_decay": pytest.approx(0.01),
        "d_model": 16.0, "n_layers": 1.0, "d_state": 8.0, "kernel": "diag", "neuron": "pspike",
        "branches": 1.0, "dropout": 0.0, "batch_size": 16.0, "seed": 0.0, "precision": "32-true",
    }  # fmt: skip
    assert metrics == list(METRICS)
    tags = set(accumulator.Tags()["scalars"])
    assert set(METRICS) <= tags
    # hparams.yaml still records every argument, for the record.
    assert "mask_output_padding" in (run / "hparams.yaml").read_text()
