"""A short quickstart run through the CLI: every documented sparsity/ and energy/ tag is
written, ``pspikessm energy`` prints the table, and notebooks/sparsity.ipynb executes on it."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_LISTOPS, fast_trainer_args, tiny_model_args
from pspikessm.cli import cli_main, main
from pspikessm.data.listops_generator import write_listops

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("layer0/input", "layer0/output")
STAGES = ("train", "val", "test")
ENERGY_ROWS = ("encoder", "layer0", "head", "total")
ENERGY_KEYS = ("ac", "mac", "nj", "dense_mac", "dense_nj")

SCALARS = {
    *(f"sparsity/{t}/{s}/{k}" for t in STAGES for s in SOURCES for k in ("rate", "silent")),
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
