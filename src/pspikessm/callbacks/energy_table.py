"""The energy table's outputs: printed text, TensorBoard text (markdown) and ``energy.csv``.

A table is a list of rows as :class:`~pspikessm.callbacks.energy.EnergyEstimate` keeps them:
``{"row": name, "ac", "mac", "nj", "dense_mac", "dense_nj"}`` per sequence, the last row the
total.
"""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only

from pspikessm.callbacks.energy_counts import PJ_PER_AC, PJ_PER_MAC
from pspikessm.callbacks.tensorboard import tensorboard_writer

#: Columns of ``energy.csv`` after ``split`` and ``row``: per sequence, spiking then non-spiking.
VALUES = ("ac", "mac", "nj", "dense_mac", "dense_nj")
CSV_NAME = "energy.csv"
TEXT_TAG = "energy/table"


def _heading(split: str) -> str:
    return (
        f"Energy per sequence on the {split} split ({PJ_PER_AC} pJ/AC, {PJ_PER_MAC} pJ/MAC; "
        "counting rules: pspikessm.callbacks.energy_counts)"
    )


def _saving(table: list[dict[str, float]]) -> str | None:
    total = table[-1]
    if total["nj"] > 0:
        return f"non-spiking / spiking energy: {total['dense_nj'] / total['nj']:.3g}x"
    return None


def format_table(table: list[dict[str, float]], split: str = "test") -> str:
    """The energy table as aligned text: one row per layer, spiking vs non-spiking."""
    lines = [
        _heading(split),
        f"{'layer':<14}{'ACs':>14}{'MACs':>14}{'energy nJ':>12}"
        f"{'non-spiking MACs':>18}{'non-spiking nJ':>16}",
    ]
    for entry in table:
        lines.append(
            f"{entry['row']:<14}{entry['ac']:>14.4g}{entry['mac']:>14.4g}{entry['nj']:>12.4g}"
            f"{entry['dense_mac']:>18.4g}{entry['dense_nj']:>16.4g}"
        )
    saving = _saving(table)
    return "\n".join(lines if saving is None else [*lines, saving])


def markdown_table(table: list[dict[str, float]], split: str = "test") -> str:
    """The energy table as markdown, as TensorBoard's TEXT tab renders it."""
    lines = [
        _heading(split),
        "",
        "| layer | ACs | MACs | energy (nJ) | non-spiking MACs | non-spiking energy (nJ) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for entry in table:
        values = " | ".join(f"{entry[key]:.4g}" for key in VALUES)
        lines.append(f"| {entry['row']} | {values} |")
    saving = _saving(table)
    return "\n".join(lines if saving is None else [*lines, "", saving])


def write_csv(table: list[dict[str, float]], path: Path, split: str) -> None:
    """``table`` as CSV at ``path``: a header, then one line per row, values unrounded."""
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["split", "row", *VALUES])
        for entry in table:
            writer.writerow([split, entry["row"], *(repr(entry[key]) for key in VALUES)])


def publish_table(trainer: L.Trainer, table: list[dict[str, float]], split: str) -> None:
    """Print ``table``; with a logger, also write it as TensorBoard text (``energy/table``)
    and as ``energy.csv`` in the run folder. Called on every process (the run folder is
    agreed by all); writes on rank zero."""
    log_dir = trainer.log_dir if trainer.loggers else None  # a collective call under DDP
    _publish(trainer, table, split, log_dir)


@rank_zero_only
def _publish(
    trainer: L.Trainer, table: list[dict[str, float]], split: str, log_dir: str | None
) -> None:
    print(format_table(table, split), flush=True)
    if log_dir is None:
        return
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    write_csv(table, Path(log_dir) / CSV_NAME, split)
    writer = tensorboard_writer(trainer)
    if writer is not None:
        writer.add_text(TEXT_TAG, markdown_table(table, split), trainer.global_step)
