"""How fast P-SpikeSSM learns against the same network without spikes, on generated ListOps.

    python -m benchmarks.parity.learning                       # pspike vs nonspiking, seeds 0 1 2
    python -m benchmarks.parity.learning --jobs 2 --variant lr4=model.lr=0.004
    python -m benchmarks.parity.learning --variant fast=configs/model/fast.yaml,model.lr=0.006
    python -m benchmarks.parity.learning --set data.init_args.batch_size=64 --steps 800

Every run builds its model, data and trainer through the CLI
(``pspikessm.cli.cli_main(args, run=False)``) from ``configs/quickstart.yaml`` (H=64, 2 layers,
S4D kernel, one branch), then the variant's overlays and ``key=value`` overrides, then
``--set``: exactly what ``pspikessm fit --config configs/quickstart.yaml --config OVERLAY
--KEY=VALUE`` builds. The data: a generated ListOps set of the LRA grammar (20-200 tokens,
depth up to 6, up to 10 arguments; 20000 training and 2000 held-back validation expressions),
written once to ``--data-dir``. Each run uses one torch thread; ``--jobs`` runs go at once.

Variants: ``pspike`` (the quickstart model) and ``nonspiking`` (plus
``configs/model/nonspiking.yaml``) always, and every ``--variant NAME=ITEM[,ITEM...]``, an
ITEM being a YAML overlay or a ``key=value`` override (``model.lr=0.002``).

Two comparisons, each over ``--seeds``:

- equal steps: every variant trains ``--steps`` optimiser steps, the cosine schedule of its
  config stretched over them;
- equal time: every variant gets the training time ``pspike`` needs for ``--steps`` steps:
  ``--steps × t_pspike / t_variant`` steps (schedule over those), ``t`` the CPU time of one
  training step measured round-robin over all variants in one process on the same batches, so
  background load hits them alike. When that is within ``--same-within`` of ``--steps`` the
  equal-steps runs stand for it.

Validation accuracy (spikes sampled, as the paper evaluates) is taken at the end of each run;
the gap is ``nonspiking`` minus the variant, in points; the firing rate is that of all spike
sources on the validation set at the end of the equal-steps runs. Prints ``name=value`` lines,
writes ``benchmarks/results/learning_<device>.json`` and the ``learning`` section of
``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

import torch

from benchmarks.harness import HERE, command_line, emit, machine, machine_line, write_results
from benchmarks.parity.learning_runs import (
    LISTOPS,
    ROOT,
    Variant,
    listops_set,
    parse_variant,
    step_times,
    train_run,
)
from benchmarks.parity.study_table import load_runs, study_markdown, study_rows

REFERENCE, BUDGET = "nonspiking", "pspike"
DEFAULT_VARIANTS = [Variant(BUDGET, []), Variant(REFERENCE, ["configs/model/nonspiking.yaml"])]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=1500, help="steps of the equal-steps runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=ITEM[,ITEM]")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="train only these variants (pspike is timed)"
    )
    parser.add_argument("--eval-every", type=int, default=250, help="validation interval, steps")
    parser.add_argument(
        "--train-rows",
        type=int,
        default=LISTOPS["num_train"],
        help="training expressions of the generated set (a set per size: name its --data-dir)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (one thread each)")
    parser.add_argument("--timing-repeats", type=int, default=40)
    parser.add_argument("--same-within", type=float, default=0.05)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "data" / "listops-learning")
    parser.add_argument("--runs-dir", type=Path, default=Path("/tmp/pspikessm-learning"))
    parser.add_argument(
        "--cache",
        type=Path,
        help="JSON file of finished runs and step times, written after every run and reused "
        "when a run's arguments are identical (refused if written by other code)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="no timing, no training: the table of the runs --cache holds (after a kill)",
    )
    parser.add_argument(
        "--study",
        nargs="+",
        type=Path,
        metavar="CACHE",
        help="no training: the per-variant study table (best val/acc, expected, gap, training "
        "loss, silent neurons, rate, CPU ms/step) of the runs these --cache files hold, "
        "whatever code wrote them (each file's command is listed)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args(argv)
    if args.report_only and not (args.cache and args.cache.exists()):
        parser.error("--report-only reads the runs of --cache: name an existing file")
    variants = [*DEFAULT_VARIANTS, *map(parse_variant, args.variant)]
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        parser.error(f"--variant: names must be unique, got {names}")
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            parser.error(f"--only: unknown variants {sorted(unknown)}; known: {names}")
        variants = [v for v in variants if v.name in {BUDGET, *args.only}]
    args.variants = [Variant(v.name, [*v.items, *args.set]) for v in variants]
    args.listops = listops_set(args.train_rows)
    return args


def run_all(
    jobs: list[dict], workers: int, cache: dict, save: Callable[[], None], train: bool = True
) -> list[dict]:
    """Train every job (``train_run`` keyword arguments), in the given order; finished ones
    come from ``cache["runs"]``; ``save`` is called after each run. Returns the finished runs
    (all of them, unless ``train`` is False)."""
    runs = cache.setdefault("runs", {})
    todo = [job for job in jobs if _key(job) not in runs] if train else []
    begun = time.perf_counter()
    context = get_context("spawn")  # fresh interpreter per run: no state shared between runs
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(train_run, **job): _key(job) for job in todo}
        for future in as_completed(futures):
            record = runs[futures[future]] = future.result()
            save()
            print(
                f"# {record['variant']} seed {record['seed']} {record['steps']} steps: "
                f"val/acc {record['val_acc']:.4f}, rate {record['firing_rate']:.4f}; "
                f"{record['run_wall_s']:.0f} s, {time.perf_counter() - begun:.0f} s since start",
                flush=True,
            )
    return [runs[_key(job)] for job in jobs if _key(job) in runs]


def _key(job: dict | list) -> str:
    if isinstance(job, list):
        return json.dumps(job)
    return json.dumps({k: str(v) for k, v in job.items() if k != "runs_dir"}, sort_keys=True)


def code_fingerprint() -> str:
    """Hash of what decides a run's result: the package, the configs and the run code."""
    digest = hashlib.sha256()
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "configs").rglob("*.yaml")]
    for path in sorted({*files, Path(__file__).with_name("learning_runs.py")}):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def load_cache(path: Path | None) -> dict:
    """The runs and step times of ``path`` (empty if None or absent), refused if written by
    other code: its runs would not compare with new ones."""
    code = code_fingerprint()
    if path is None or not path.exists():
        return {"code": code}
    cache = json.loads(path.read_text())
    if cache.get("code") != code:
        raise SystemExit(
            f"--cache {path}: written by other code (fingerprint {cache.get('code')}, now "
            f"{code}); its runs would not compare with new ones: delete it or name another file"
        )
    return cache


def measured_step_times(args: argparse.Namespace, cached: dict[str, float]) -> dict[str, float]:
    """CPU seconds per training step of every variant: ``pspike``'s measured now, the others'
    as their ratio to it, measured with it round-robin now or earlier (in ``cached``)."""
    missing = [v for v in args.variants[1:] if _key(v.items) not in cached]
    if args.report_only:
        if missing or BUDGET not in cached:
            raise SystemExit(
                f"--report-only: --cache {args.cache} has no step time of "
                f"{[BUDGET] if BUDGET not in cached else [v.name for v in missing]}"
            )
        budget = cached[BUDGET]
    else:
        begun = time.perf_counter()
        measured = step_times(
            [args.variants[0], *missing], args.data_dir, args.timing_repeats, args.listops
        )
        print(f"# step times of {len(missing) + 1} variants: {time.perf_counter() - begun:.0f} s")
        budget = cached[BUDGET] = measured[BUDGET]
        for variant in missing:
            cached[_key(variant.items)] = measured[variant.name] / budget
    return {BUDGET: budget, **{v.name: budget * cached[_key(v.items)] for v in args.variants[1:]}}


def summary(values: Iterable[float]) -> tuple[float, float]:
    """Mean and standard deviation over seeds (0 for one seed; NaN if a value is NaN or there
    is none)."""
    values = list(values)
    if not values or any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.study:
        rows = study_rows(load_runs(args.study)[0])
        for row in rows:
            emit({f"{row['name']}_{k}": v for k, v in row.items() if isinstance(v, float)})
        print(study_markdown(rows, load_runs(args.study)[1]))
        return
    torch.set_num_threads(1)
    info = machine()
    started = datetime.datetime.now(datetime.timezone.utc)
    common = {
        "data_dir": args.data_dir,
        "runs_dir": args.runs_dir,
        "eval_every": args.eval_every,
        **({} if args.listops is LISTOPS else {"listops": args.listops}),
    }
    cache = load_cache(args.cache)
    if not args.report_only:  # the report names the command and machine that trained
        command = command_line().replace(" --no-write", "")
        cache.update(command=command, date=started.isoformat(), machine=info)
    command, info = cache.get("command", command_line()), cache.get("machine", info)
    started = datetime.datetime.fromisoformat(cache.get("date", started.isoformat()))
    times = measured_step_times(args, cache.setdefault("step_times", {}))
    emit({f"{name}_cpu_ms_per_step": 1e3 * t for name, t in times.items()})
    steps_at_equal_time = {}
    for variant in args.variants:
        steps = 10 * round(args.steps * times[BUDGET] / times[variant.name] / 10)
        same = abs(steps - args.steps) <= args.same_within * args.steps
        steps_at_equal_time[variant.name] = args.steps if same else steps
    # Seed by seed, longest runs first: a run cut short by a kill loses the last seed's runs,
    # not a variant, and no long run starts last.
    jobs = [
        {"variant": v, "seed": seed, "steps": steps, **common}
        for seed in args.seeds
        for v in args.variants
        for steps in sorted({args.steps, steps_at_equal_time[v.name]})
    ]
    if args.only:  # `pspike` is timed as the budget, trained only when named
        jobs = [job for job in jobs if job["variant"].name in args.only]
    jobs.sort(
        key=lambda job: (args.seeds.index(job["seed"]), -job["steps"] * times[job["variant"].name])
    )

    def save() -> None:
        if args.cache:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.cache.write_text(json.dumps(cache, indent=1) + "\n")

    save()
    records = run_all(jobs, args.jobs, cache, save, train=not args.report_only)
    emit({"runs_finished": len(records), "runs_planned": len(jobs)})
    rows = table_rows(args, records, times, steps_at_equal_time)
    for row in rows:
        emit({f"{row['name']}_{k}": v for k, v in row.items() if k not in ("name", "items")})
    if not args.no_write:
        payload = {
            "machine": info,
            "command": command,
            "date": started.isoformat(timespec="minutes"),
            "data": args.listops,
            "rows": rows,
            "runs": records,
        }
        write_results("learning", payload, markdown(args, rows, info, started, command))


def table_rows(
    args: argparse.Namespace,
    records: list[dict],
    times: dict[str, float],
    steps_at_equal_time: dict[str, int],
) -> list[dict]:
    """One row per variant: accuracies at equal steps and at equal time, gaps, rate, speed."""

    def accuracies(name: str, steps: int) -> list[float]:
        return [r["val_acc"] for r in records if r["variant"] == name and r["steps"] == steps]

    reference = {
        "steps": summary(accuracies(REFERENCE, args.steps))[0],
        "time": summary(accuracies(REFERENCE, steps_at_equal_time[REFERENCE]))[0],
    }
    rows = []
    for variant in args.variants:
        name = variant.name
        acc_steps, spread_steps = summary(accuracies(name, args.steps))
        acc_time, spread_time = summary(accuracies(name, steps_at_equal_time[name]))
        rates = [
            r["firing_rate"] for r in records if r["variant"] == name and r["steps"] == args.steps
        ]
        rows.append(
            {
                "name": name,
                "items": ", ".join(variant.items) or "(configs/quickstart.yaml)",
                "val_acc_steps": acc_steps,
                "val_acc_steps_spread": spread_steps,
                "gap_steps_points": 100 * (reference["steps"] - acc_steps),
                "steps_at_equal_time": steps_at_equal_time[name],
                "val_acc_time": acc_time,
                "val_acc_time_spread": spread_time,
                "gap_time_points": 100 * (reference["time"] - acc_time),
                "firing_rate": summary(rates)[0],
                "seeds_steps": len(accuracies(name, args.steps)),
                "seeds_time": len(accuracies(name, steps_at_equal_time[name])),
                "cpu_ms_per_step": 1e3 * times[name],
                "step_time_ratio": times[name] / times[BUDGET],
            }
        )
    return rows


def markdown(
    args: argparse.Namespace,
    rows: list[dict],
    info: dict,
    started: datetime.datetime,
    command: str,
) -> str:
    header = (
        f"## Learning speed (`{command}`)\n\n"
        f"{started:%d %b %Y %H:%M} UTC. Generated ListOps (LRA grammar: "
        f"{args.listops['min_length']}-{args.listops['max_length']} tokens, depth ≤ "
        f"{args.listops['max_depth']}, ≤ {args.listops['max_args']} arguments; "
        f"{args.listops['num_train']} training, {args.listops['num_val']} held-back validation "
        f"expressions), the quickstart model (H=64, 2 layers, S4D, one branch) built by the CLI "
        f"from `configs/quickstart.yaml` + each variant's items; seeds {args.seeds}, one torch "
        f"thread per run. val/acc: end of run, spikes sampled (mean ± std over seeds). Gap: "
        f"`{REFERENCE}` − variant, points. Equal time: the CPU time `{BUDGET}` takes for "
        f"{args.steps} steps, per-step CPU times measured round-robin in one process. Rate: "
        f"validation firing rate of all spike sources.\n{machine_line(info)}\n\n"
    )
    lines = [
        "| variant | items | val/acc, equal steps | gap | steps at equal time | "
        "val/acc, equal time | gap | rate | ms/step (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['items']} | {_accuracy(row, 'steps', args)} | "
            f"{_points(row['gap_steps_points'])} | {row['steps_at_equal_time']} | "
            f"{_accuracy(row, 'time', args)} | {_points(row['gap_time_points'])} | "
            f"{_rate(row['firing_rate'])} | {row['cpu_ms_per_step']:.1f} |"
        )
    return header + "\n".join(lines) + "\n"


def _accuracy(row: dict, budget: str, args: argparse.Namespace) -> str:
    """``mean ± spread`` of val/acc at equal ``budget`` (steps, time); `` (n=2)`` after it
    where fewer seeds than asked for finished."""
    finished = row[f"seeds_{budget}"]
    if finished == 0:
        return "–"
    seeds = "" if finished == len(args.seeds) else f" (n={finished})"
    return f"{row[f'val_acc_{budget}']:.3f} ± {row[f'val_acc_{budget}_spread']:.3f}{seeds}"


def _points(gap: float) -> str:
    return "–" if math.isnan(gap) else f"{gap:+.1f}"


def _rate(rate: float) -> str:
    return "–" if math.isnan(rate) else f"{rate:.3f}"


if __name__ == "__main__":
    main()
