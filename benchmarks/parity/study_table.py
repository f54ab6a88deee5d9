"""The per-variant table of ``python -m benchmarks.parity.learning --study CACHE...``.

Reads the run records of one or more ``--cache`` files (each written by one learning command,
possibly by different code) and prints, per variant, over its seeds: the best validation
accuracy with spikes sampled (mean ± std), the accuracy on firing probabilities at the end,
the gap to the non-spiking twin (its mean best minus the variant's), the training loss over
the last validation interval, the largest silent fraction of any spike site at the end, the
validation firing rate, and the CPU milliseconds per training step (the runs' own, so they
carry the load the machine had). Then every cache's command, date and machine.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from pathlib import Path

REFERENCE = "nonspiking"


def load_runs(paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """Every run record of the caches at ``paths`` (each tagged with its cache's index), and
    each cache's command, date and machine."""
    runs, sources = [], []
    for index, path in enumerate(paths):
        cache = json.loads(path.read_text())
        sources.append(
            {
                "path": str(path),
                "command": cache.get("command", "?"),
                "date": cache.get("date", "?"),
                "code": cache.get("code", "?"),
                "machine": cache.get("machine", {}),
            }
        )
        runs += [{**record, "cache": index} for record in cache.get("runs", {}).values()]
    return runs, sources


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return statistics.fmean(values) if values else math.nan


def silent_max(run: dict) -> float:
    """The largest validation silent fraction of any spike site at the run's last validation
    (NaN for a run without spike sites)."""
    values = [
        value
        for tag, value in run["evals"][-1].get("sparsity", {}).items()
        if tag.startswith("sparsity/val/") and tag.endswith("/silent")
    ]
    return max(values, default=math.nan)


def study_rows(runs: list[dict]) -> list[dict]:
    """One row per variant (in first-seen order) with the columns of the module docstring;
    a variant's seed that several caches hold is taken from the first."""
    by_variant: dict[str, list[dict]] = defaultdict(list)
    for run in runs:  # a (variant, seed) trained again in a later cache counts once: the first
        if all(
            r["seed"] != run["seed"] or r["steps"] != run["steps"]
            for r in by_variant[run["variant"]]
        ):
            by_variant[run["variant"]].append(run)
    twin = _mean([r["best_val_acc"] for r in by_variant.get(REFERENCE, [])])
    rows = []
    for name, group in by_variant.items():
        group.sort(key=lambda r: r["seed"])
        best = [r["best_val_acc"] for r in group]
        mean_best = statistics.fmean(best)
        rows.append(
            {
                "name": name,
                "items": ", ".join(group[0]["items"]) or "(configs/quickstart.yaml)",
                "seeds": [r["seed"] for r in group],
                "steps": sorted({r["steps"] for r in group}),
                "best_val_acc": mean_best,
                "best_val_acc_std": statistics.stdev(best) if len(best) > 1 else 0.0,
                "expected_val_acc": _mean([r["val_acc_expected"] for r in group]),
                "gap_points": 100 * (twin - mean_best),
                "train_loss": _mean([r["evals"][-1].get("train_loss", math.nan) for r in group]),
                "silent_max": _mean([silent_max(r) for r in group]),
                "firing_rate": _mean([r["firing_rate"] for r in group]),
                "cpu_ms_per_step": _mean([1e3 * r["train_cpu_s"] / r["steps"] for r in group]),
                "caches": sorted({r["cache"] for r in group}),
            }
        )
    return rows


def _number(value: float, digits: int = 3, sign: bool = False) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def study_markdown(rows: list[dict], sources: list[dict]) -> str:
    """The rows as a Markdown table, then the command of every cache ([k] in the table)."""
    lines = [
        "| variant | items | seeds | best val/acc, sampled | val/acc, probabilities | gap | "
        "training loss | silent (worst site) | rate | CPU ms/step | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['items']} | {','.join(map(str, row['seeds']))} | "
            f"{row['best_val_acc']:.3f} ± {row['best_val_acc_std']:.3f} | "
            f"{_number(row['expected_val_acc'])} | {_number(row['gap_points'], 1, sign=True)} | "
            f"{_number(row['train_loss'], 2)} | {_number(row['silent_max'], 2)} | "
            f"{_number(row['firing_rate'])} | {row['cpu_ms_per_step']:.0f} | "
            f"{', '.join(f'[{c}]' for c in row['caches'])} |"
        )
    lines.append("")
    for index, source in enumerate(sources):
        lines.append(f"[{index}] `{source['command']}` ({source['date'][:16]}, {source['path']})")
    return "\n".join(lines) + "\n"
