"""A short quickstart run through the CLI: every documented sparsity/ and energy/ tag is
written, the TensorBoard views (custom-scalars layout, energy text, HPARAMS with hp_metric,
pictures of the chosen example) are there, ``pspikessm energy`` prints the table, and
notebooks/sparsity.ipynb opens the newest run and executes on it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import yaml
from nbclient import NotebookClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers.cli_args import TINY_LISTOPS, fast_trainer_args, tiny_model_args
from helpers.tensorboard_events import (
    figure_pixels,
    hparams,
    latest_image,
    latest_scalar,
    latest_text,
    layout_charts,
    load,
    matching,
)
from pspikessm.callbacks import spike_sources
from pspikessm.callbacks.sparsity_plots import layers_raster_figure, raster_figure
from pspikessm.cli import cli_main, main
from pspikessm.data import ListOpsDataModule
from pspikessm.data.listops_generator import write_listops
from pspikessm.module import SequenceClassifier

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("layer0/input", "layer0/output")
STAGES = ("train", "val", "test")
ENERGY_ROWS = ("encoder", "layer0", "head", "total")
ENERGY_KEYS = ("ac", "mac", "nj", "dense_mac", "dense_nj")

SCALARS = {
    *(
        f"sparsity/{t}/{s}/{k}"
        for t in STAGES
        for s in SOURCES
        for k in ("rate", "silent", "drive_outside", "drive_mean")
    ),
    *(f"sparsity/{t}/rate" for t in STAGES),
    *(f"energy/{r}/{k}" for r in ENERGY_ROWS for k in ENERGY_KEYS),
    "energy/saving",
}
HISTOGRAMS = {f"sparsity/{t}/{s}/neuron_rates" for t in STAGES for s in SOURCES}
IMAGES = {
    *(f"sparsity/val/raster/{s}" for s in (*SOURCES, "all_layers")),
    "sparsity/val/active_ratio/layer0",
}


def run_args(tmp_path: Path, listops_dir: Path) -> list[str]:
    return [
        "--config",
        str(ROOT / "configs/quickstart.yaml"),
        *tiny_model_args(),
        *fast_trainer_args(tmp_path),
        f"--data.init_args.data_dir={listops_dir}",
    ]


def event_tags(run_root: Path) -> dict[str, set[str]]:
    """Tags per kind over every event file under ``run_root``."""
    tags: dict[str, set[str]] = {"scalars": set(), "histograms": set(), "images": set()}
    for events in run_root.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0}).Reload()
        for kind in tags:
            tags[kind] |= set(accumulator.Tags()[kind])
    return tags


def tiny_run(tmp_path: Path, listops_dir: Path) -> Path:
    """Fit one epoch and test the last checkpoint; returns the run folder (version_0)."""
    args = run_args(tmp_path, listops_dir)
    cli_main(["fit", *args, "--trainer.max_epochs=1", "--trainer.log_every_n_steps=1"])
    run = tmp_path / "logs" / "quickstart" / "version_0"
    cli_main(["test", *args, f"--ckpt_path={run / 'checkpoints' / 'last.ckpt'}"])
    return run


@pytest.fixture(scope="module")
def tiny_quickstart_run(tmp_path_factory) -> Path:
    """One tiny run shared by the tests of this file (read-only for them)."""
    tmp_path = tmp_path_factory.mktemp("quickstart")
    listops_dir = tmp_path / "lra_release"
    write_listops(listops_dir / "listops-1000", TINY_LISTOPS)
    return tiny_run(tmp_path, listops_dir)


def test_event_files_contain_every_documented_tag(tiny_quickstart_run, capsys):
    run = tiny_quickstart_run
    tags = event_tags(run.parent)
    assert tags["scalars"] >= SCALARS, sorted(SCALARS - tags["scalars"])
    assert tags["histograms"] >= HISTOGRAMS, sorted(HISTOGRAMS - tags["histograms"])
    assert tags["images"] >= IMAGES, sorted(IMAGES - tags["images"])
    written = {
        t for kind in tags.values() for t in kind if t.split("/")[0] in ("sparsity", "energy")
    }
    assert written <= SCALARS | HISTOGRAMS | IMAGES, "undocumented tags: update README and test"

    capsys.readouterr()
    ckpt = run / "checkpoints" / "last.ckpt"
    main(["energy", "--config", str(run / "config.yaml"), "--ckpt_path", str(ckpt)])
    table = capsys.readouterr().out
    assert "layer0" in table and "non-spiking / spiking energy" in table
    assert not (run.parent / "version_2").exists(), "the energy command must not write logs"


def first_validation_batch(run: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Spikes (B, H, L) of every source, and lengths (B,), of the first validation batch as the
    run's last validation drew them: the same data, weights (last.ckpt) and seeded evaluation."""
    module = SequenceClassifier.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    settings = yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]
    data = ListOpsDataModule(
        **{key: settings[key] for key in ("data_dir", "max_length", "batch_size")}
    )
    data.setup("validate")
    inputs, lengths, _ = next(iter(data.val_dataloader()))
    spikes: dict[str, torch.Tensor] = {}
    handles = [
        source.register_forward_hook(lambda m, args, out, name=name: spikes.update({name: out}))
        for name, source in spike_sources(module)
    ]
    module.eval()
    module.on_validation_start()  # the evaluation mode of the samplers
    with torch.no_grad():
        module.evaluate(inputs, lengths, batch_idx=0)
    for handle in handles:
        handle.remove()
    return spikes, lengths


def test_tensorboard_views_of_a_short_run(tiny_quickstart_run):
    fit_run, test_run = tiny_quickstart_run, tiny_quickstart_run.parent / "version_1"
    fit_events, test_events = load(fit_run), load(test_run)

    # Custom scalars: per stage, every source's rate in one chart, silent fractions in another,
    # the drives outside the firing window and the mean drives in two more.
    for events, stages in ((fit_events, ("train", "val")), (test_events, ("test",))):
        charts = layout_charts(events, "Sparsity")
        logged = set(events.Tags()["scalars"])
        assert len(charts) == 4 * len(stages)
        for stage in stages:
            rates = matching(charts[f"{stage}: firing rate per layer"], logged)
            assert rates == {f"sparsity/{stage}/{s}/rate" for s in SOURCES} | {
                f"sparsity/{stage}/rate"
            }
            silent = matching(charts[f"{stage}: fraction of silent neurons"], logged)
            assert silent == {f"sparsity/{stage}/{s}/silent" for s in SOURCES}
            outside = f"{stage}: fraction of drives outside the firing window (no gradient)"
            drawn = matching(charts[outside], logged)
            assert drawn == {f"sparsity/{stage}/{s}/drive_outside" for s in SOURCES}

    # The energy table as text, and as energy.csv, in the test run's folder.
    table = latest_text(test_events, "energy/table")
    assert "| layer | ACs | MACs |" in table and "| layer0 |" in table and "| total |" in table
    with open(test_run / "energy.csv", newline="") as file:
        assert [row["row"] for row in csv.DictReader(file)] == list(ENERGY_ROWS)

    # HPARAMS: the compared settings; hp_metric the best val/acc, then test/acc.
    values, metrics = hparams(fit_events)
    assert metrics == [
        "hp_metric",
        "val/acc_best",
        "test/acc",
        "sparsity/val/rate",
        "energy/saving",
    ]
    assert values["d_model"] == 16 and values["lr"] == pytest.approx(0.012)
    assert values["kernel"] == "diag" and values["batch_size"] == 32
    best = latest_scalar(fit_events, "val/acc_best")
    assert latest_scalar(fit_events, "hp_metric") == pytest.approx(best)
    assert latest_scalar(test_events, "hp_metric") == pytest.approx(
        latest_scalar(test_events, "test/acc")
    )
    summary = latest_text(fit_events, "run/summary")
    assert f"best val/acc: {best:.4f} at epoch 0" in summary and f"run folder: {fit_run}" in summary

    # Pictures: the longest example of the first validation batch, over its own length.
    spikes, lengths = first_validation_batch(fit_run)
    index, length = int(lengths.argmax()), int(lengths.max())
    caption = f"example {index}, {length} steps"
    assert latest_text(fit_events, "sparsity/val/example").endswith(f": {length} time steps.")
    example = {name: s[index, :, :length].float() for name, s in spikes.items()}
    for name in SOURCES:
        expected = figure_pixels(raster_figure(example[name], f"{name}: {caption}"))
        np.testing.assert_array_equal(
            latest_image(fit_events, f"sparsity/val/raster/{name}"), expected
        )
    expected = figure_pixels(layers_raster_figure(example, f"validation {caption}"))
    logged = latest_image(fit_events, "sparsity/val/raster/all_layers")
    np.testing.assert_array_equal(logged, expected)


def test_energy_command_names_a_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="--ckpt_path"):
        main(
            [
                "energy",
                "--config",
                str(ROOT / "configs/quickstart.yaml"),
                "--ckpt_path",
                str(tmp_path / "x.ckpt"),
            ]
        )


NOTEBOOK = ROOT / "notebooks" / "sparsity.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None


@pytest.mark.slow
def test_notebook_opens_the_newest_run_and_executes(tiny_quickstart_run, tmp_path, monkeypatch):
    # The working directory holds logs/ with the tiny run and an older run: no variable set.
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "quickstart").symlink_to(tiny_quickstart_run.parent)
    older = tmp_path / "logs" / "older" / "version_3" / "checkpoints" / "last.ckpt"
    older.parent.mkdir(parents=True)
    older.touch()
    os.utime(older, (0, 0))
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    )
    client.execute()
    text = "".join(
        output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", [])
    )
    expected = tmp_path / "logs" / "quickstart" / tiny_quickstart_run.name
    assert f"run folder: {expected.resolve()}" in text
    assert "Validation example" in text and "time steps" in text
    assert "non-spiking / spiking energy" in text
    images = [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 3  # training curves, rasters and active ratio, energy bars
