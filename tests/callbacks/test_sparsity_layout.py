"""The "Sparsity" custom-scalars layout: per stage, charts of every source's firing rate, silent
fraction, drives outside the firing window and mean drive, whatever the sources are called."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger

from helpers.spiking_doubles import ForcedSpikes, token_batches
from helpers.tensorboard_events import layout_charts, load, matching
from pspikessm.callbacks import FiringRateMonitor
from pspikessm.callbacks.sparsity_layout import CATEGORY, sparsity_layout
from pspikessm.module import SequenceClassifier

#: The charts of each stage, in the layout's order.
CHARTS = (
    "firing rate per layer",
    "fraction of silent neurons",
    "fraction of drives outside the firing window (no gradient)",
    "mean drive per layer",
)


def test_charts_select_every_source_of_their_stage_by_name():
    sources = ["layer0/input", "layer0/output", "layer0/input_b", "layer1/output_b", "encoder_x"]
    tags = {
        f"sparsity/{stage}/{source}/{key}"
        for stage in ("train", "val", "test")
        for source in sources
        for key in ("rate", "silent", "neuron_rates", "drive_outside", "drive_mean")
    } | {f"sparsity/{stage}/rate" for stage in ("train", "val", "test")}
    charts = sparsity_layout(["val", "train"])[CATEGORY]
    assert list(charts) == [f"{stage}: {what}" for stage in ("train", "val") for what in CHARTS]
    for stage in ("train", "val"):
        kind, regexes = charts[f"{stage}: firing rate per layer"]
        assert kind == "Multiline"
        assert matching(regexes, tags) == {f"sparsity/{stage}/{s}/rate" for s in sources} | {
            f"sparsity/{stage}/rate"
        }
        _, regexes = charts[f"{stage}: fraction of silent neurons"]
        assert matching(regexes, tags) == {f"sparsity/{stage}/{s}/silent" for s in sources}
        _, regexes = charts[f"{stage}: fraction of drives outside the firing window (no gradient)"]
        assert matching(regexes, tags) == {f"sparsity/{stage}/{s}/drive_outside" for s in sources}
        _, regexes = charts[f"{stage}: mean drive per layer"]
        assert matching(regexes, tags) == {f"sparsity/{stage}/{s}/drive_mean" for s in sources}


def test_event_file_layout_draws_the_logged_tags_of_each_stage(tmp_path):
    backbone = ForcedSpikes([([1.0, 0.5], [0.5, 0.0]), ([0.5, 0.0], [1.0, 0.5])])
    module = SequenceClassifier(backbone, num_classes=2, scheduler="constant")
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        logger=TensorBoardLogger(tmp_path, name="run"),
        callbacks=[FiringRateMonitor(histograms=False, images=False)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
    )
    loader = token_batches([5, 3, 8, 1, 6, 2], batch_size=2)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader)
    (run,) = (tmp_path / "run").glob("version_*")  # every event file of the run folder
    accumulator = load(run)
    charts = layout_charts(accumulator, CATEGORY)
    assert sorted(charts) == sorted(
        f"{stage}: {what}" for stage in ("train", "val") for what in CHARTS
    )
    trainer.test(module, dataloaders=loader, verbose=False)
    accumulator = load(run)
    charts = layout_charts(accumulator, CATEGORY)
    assert len(charts) == 12  # the same run folder now also has test values
    logged = set(accumulator.Tags()["scalars"])
    sources = ["layer0/input", "layer0/output", "layer1/input", "layer1/output"]
    for stage in ("train", "val", "test"):
        drawn = matching(charts[f"{stage}: firing rate per layer"], logged)
        assert drawn == {f"sparsity/{stage}/{s}/rate" for s in sources} | {f"sparsity/{stage}/rate"}
        drawn = matching(charts[f"{stage}: fraction of silent neurons"], logged)
        assert drawn == {f"sparsity/{stage}/{s}/silent" for s in sources}
        drawn = matching(charts[f"{stage}: mean drive per layer"], logged)
        assert drawn == {f"sparsity/{stage}/{s}/drive_mean" for s in sources}
