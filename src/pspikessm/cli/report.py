"""``pspikessm report [LOG_DIR ...] [--csv]``: one table of every run under the log folders.

Examples::

    pspikessm report                       # every run under ./logs, as a Markdown table
    pspikessm report logs /scratch/logs --csv > runs.csv

A run folder is a folder with a TensorBoard event file, a ``summary.json`` or a
``config.yaml`` (Lightning's ``<save_dir>/<name>/<version>/``). Each row holds: the task (the
run's name), the config and the overlays (the first and the further ``--config`` files of the
newest attempt's command), steps, the best val/acc and its epoch (0-based), test/acc, the
mean firing rate at validation, the energy ratio (non-spiking / spiking, at test), the
training time summed over attempts, the status, and the paper's published P-SpikeSSM accuracy
for the task. ``summary.json`` (written by RunSummary, :mod:`pspikessm.callbacks.run_status`)
gives the status, command and time; the event files give the metrics, and everything else
when a run has no ``summary.json`` (its status is then ``unknown``). A folder where only
``test`` ran (a new logger version) has the status ``test only`` (``predict only``,
``validate only``: the command its ``config.yaml`` records).
"""

from __future__ import annotations

import argparse
import csv
import io
import shlex
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pspikessm.callbacks.run_status import STATUS_FILE, checked_status
from pspikessm.callbacks.run_summary import format_duration
from pspikessm.runtime.run_folder import EVALUATION_COMMANDS, recorded_command

#: The P-SpikeSSM accuracy (%) the paper publishes, by run name (the configs' logger ``name``):
#: the numbers recorded in ``shared/reference/model.md`` (psMNIST 98.4, SC10 95.6). None: the
#: paper gives no P-SpikeSSM number for the task (sMNIST, SC35) or it is not recorded there
#: (the LRA tasks: the reference's table lists the other models' rows only).
PUBLISHED: dict[str, float | None] = {
    "lra-listops": None,
    "lra-text": None,
    "lra-retrieval": None,
    "lra-image": None,
    "lra-pathfinder": None,
    "lra-pathx": None,
    "smnist": None,
    "psmnist": 98.4,
    "speech-sc10": 95.6,
    "speech-sc10-authors": 95.6,
    "speech-sc35": None,
}

#: Scalars read from the event files (only these are loaded).
SCALARS = ("val/acc", "val/acc_best", "test/acc", "sparsity/val/rate", "energy/saving", "epoch")


@dataclass
class Row:
    """One run of the report; None where the run has no value."""

    task: str
    config: str
    overlays: str
    steps: int | None
    best_val_acc: float | None
    best_epoch: int | None
    test_acc: float | None
    firing_rate: float | None
    energy_ratio: float | None
    seconds: float | None
    status: str
    paper: float | None
    folder: str


def find_run_folders(log_dirs: list[Path]) -> list[Path]:
    """Every run folder under ``log_dirs`` (sorted, each once)."""
    found: set[Path] = set()
    for log_dir in log_dirs:
        if not log_dir.is_dir():
            raise FileNotFoundError(f"pspikessm report: {log_dir} is not a folder of runs")
        for pattern in ("events.out.tfevents.*", STATUS_FILE, "config.yaml"):
            found.update(path.parent for path in log_dir.rglob(pattern))
    return sorted(found)


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Tag → ``(step, value)`` of the :data:`SCALARS` in the run folder's event files."""
    sizes = {"scalars": 0, "tensors": 1, "images": 1, "histograms": 1, "audio": 1}
    events = EventAccumulator(str(run_dir), size_guidance=sizes).Reload()
    tags = set(events.Tags()["scalars"])
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in SCALARS
        if tag in tags
    }


def configs_of(command: str) -> tuple[str, str]:
    """``(config, overlays)``: the first ``--config`` file of ``command`` and the further ones
    (space-separated)."""
    words, files = shlex.split(command), []
    for index, word in enumerate(words):
        if word == "--config" and index + 1 < len(words):
            files.append(words[index + 1])
        elif word.startswith("--config="):
            files.append(word.removeprefix("--config="))
    return (files[0] if files else "", " ".join(files[1:]))


def _latest(scalars: dict[str, list[tuple[int, float]]], tag: str) -> float | None:
    return scalars[tag][-1][1] if scalars.get(tag) else None


def _best_from_events(scalars: dict[str, list[tuple[int, float]]]) -> tuple[float | None, Any]:
    """Best val/acc and its epoch, from the ``val/acc`` series and the ``epoch`` scalar."""
    if not scalars.get("val/acc"):
        return None, None
    step, value = max(scalars["val/acc"], key=lambda pair: pair[1])
    epochs = dict(scalars.get("epoch", []))
    epoch = epochs.get(step)
    return value, None if epoch is None else int(epoch)


def _evaluation(run_dir: Path) -> str | None:
    """``test only`` (``validate only``, ``predict only``) for a folder where only that ran."""
    command = recorded_command(run_dir)
    return f"{command} only" if command in EVALUATION_COMMANDS else None


def read_run(run_dir: Path, root: Path, problems: list[str] | None = None) -> Row:
    """The report's row for the run folder ``run_dir`` (found under ``root``).

    A ``summary.json`` that is not valid JSON, or fields of it with the wrong types, are
    left out (the row falls back on the event files), the status says ``(bad summary.json)``,
    and what is wrong, naming the file, is added to ``problems``.
    """
    record, wrong = checked_status(run_dir)
    if problems is not None:
        problems.extend(wrong)
    scalars = read_scalars(run_dir)
    config, overlays = configs_of(record.get("command", ""))
    best = record.get("best") or {}
    best_value, best_epoch = best.get("value"), best.get("epoch")
    if best_value is None:
        best_value, best_epoch = _best_from_events(scalars)
    tested = record.get("test") or {}
    steps = record.get("global_step")
    if steps is None:
        steps = max((pairs[-1][0] for pairs in scalars.values() if pairs), default=None)
    task = record.get("task") or run_dir.parent.name
    return Row(
        task=task,
        config=config,
        overlays=overlays,
        steps=steps,
        best_val_acc=best_value,
        best_epoch=best_epoch,
        test_acc=tested.get("test/acc", _latest(scalars, "test/acc")),
        firing_rate=_latest(scalars, "sparsity/val/rate"),
        energy_ratio=tested.get("energy/saving", _latest(scalars, "energy/saving")),
        seconds=record.get("seconds"),
        status=(
            record.get("status") or _evaluation(run_dir) or ("test only" if tested else "unknown")
        )
        + (" (bad summary.json)" if wrong else ""),
        paper=PUBLISHED.get(task),
        folder=str(run_dir.relative_to(root) if run_dir.is_relative_to(root) else run_dir),
    )


HEADERS = {
    "task": "task",
    "config": "config",
    "overlays": "overlays",
    "steps": "steps",
    "best_val_acc": "best val/acc",
    "best_epoch": "epoch",
    "test_acc": "test/acc",
    "firing_rate": "firing rate",
    "energy_ratio": "energy ratio",
    "seconds": "time",
    "status": "status",
    "paper": "paper (%)",
    "folder": "run folder",
}


def _cell(name: str, value: Any) -> str:
    """A table cell: accuracies and rates to 4 places, the ratio to 2, time as a duration."""
    if value is None or value == "":
        return "–"
    if name == "seconds":
        return format_duration(value)
    if name in ("best_val_acc", "test_acc", "firing_rate"):
        return f"{value:.4f}"
    if name == "energy_ratio":
        return f"{value:.2f}x"
    return str(value)


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    names = [field.name for field in fields(Row)]
    lines = ["| " + " | ".join(HEADERS[name] for name in names) + " |"]
    lines.append("|" + "---|" * len(names))
    for row in rows:
        values = asdict(row)
        lines.append("| " + " | ".join(_cell(name, values[name]) for name in names) + " |")
    return "\n".join(lines) + "\n"


def as_csv(rows: list[Row]) -> str:
    """The rows as CSV: the field names as header, raw values (seconds, fractions)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[field.name for field in fields(Row)])
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in asdict(row).items()})
    return out.getvalue()


def report(log_dirs: list[Path], problems: list[str] | None = None) -> list[Row]:
    """A row for every run folder under ``log_dirs``; what is wrong with their summaries is
    added to ``problems``."""
    return [
        read_run(run_dir, root, problems)
        for root in log_dirs
        for run_dir in find_run_folders([root])
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="pspikessm report",
        description="One table of every run under the log folders (default: ./logs).",
    )
    parser.add_argument("log_dirs", nargs="*", type=Path, default=[Path("logs")], metavar="LOG_DIR")
    parser.add_argument("--csv", action="store_true", help="CSV instead of a Markdown table")
    args = parser.parse_args(argv)
    problems: list[str] = []
    try:
        rows = report(args.log_dirs, problems)
    except (FileNotFoundError, ValueError) as error:
        parser.exit(2, f"{error}\n")
    for problem in problems:  # the table is on stdout: these go beside it
        print(f"pspikessm report: {problem} (ignored)", file=sys.stderr)
    if not rows:
        folders = ", ".join(map(str, args.log_dirs))
        parser.exit(1, f"pspikessm report: no runs under {folders}\n")
    sys.stdout.write(as_csv(rows) if args.csv else markdown(rows))
