"""Learning curves of the authors' ListOps model and this project's, on the same data and steps.

    pip install einops omegaconf          # the authors' code needs them (not this package)
    python -m benchmarks.parity.run --authors /path/to/PSpikeSSMs                 # seed 0, 1000 steps
    python -m benchmarks.parity.run --authors PATH --seeds 0 1 2 --jobs 2
    python -m benchmarks.parity.run --authors PATH --steps 3000 --eval-at 250 500 1000 2000 \\
        --device cuda --jobs 6 --seeds 0 1 2 --out-dir runs/    # then --collect runs/*.json
    python -m benchmarks.parity.run --authors PATH --sides ours --ours-config configs/model/fast.yaml
    python -m benchmarks.parity.run --authors PATH --authors-ablation mask_bn     # see --help

Both models train on a generated ListOps set (LRA grammar, lengths 20-200, depth up to 6,
written to ``--data-dir`` on first use) with identical batches of 32 in identical order per
seed, AdamW at lr 8e-4 and weight decay 0.01 with each model's own SSM groups, 100 warm-up
steps and a cosine to zero at ``--steps``. The authors' side is their code from ``--authors``
(their ``SequenceModel``, optimiser groups, schedule formula and pure-torch Cauchy kernel; the
kernel length ``--authors-l-max`` is 2048, their ListOps experiment's and this project's
config's, so both train the same parameter C̃ = C (I - Ā^2048)). This project's side is
``configs/lra/listops.yaml`` (plus ``--ours-config`` overlays and ``--ours-arg`` overrides)
through the CLI. Every ``--eval-every`` steps (or at the ``--eval-at`` steps) both report the accuracy on the 2000 held-back
validation sequences (evaluation mode, spikes sampled with a fixed seed): the fraction
predicted right, as LRA and the authors' code report it, and (``val_macro_acc``) the mean of
the per-class recalls, which is what torchmetrics' ``MulticlassAccuracy`` computes by default.

Prints ``name=value`` lines: ``<side>.seed<s>.step<n>.val_acc`` (and ``train_loss``), the means
over seeds ``<side>.mean.step<n>.val_acc``, and ``diff.*`` (authors minus ours), then a
Markdown table; ``--json FILE`` keeps the curves (``--out-dir``: one file per run, written
after every evaluation), ``--collect FILE...`` reports saved ones,
``--ours-checkpoint CKPT`` evaluates a checkpoint of ``pspikessm fit`` both ways. Each
(side, seed) trains in its own process with one torch thread, ``--jobs`` at a time. Without
``--authors`` (or with a path that is not a checkout) it prints why and exits 0, unless
``--sides ours`` asks for this project's model alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from benchmarks.authors import MODEL_FILE, import_authors
from benchmarks.harness import ROOT, emit


def authors_or_skip(path: Path | None):
    """The authors' imported classes, or a message and exit 0 when there is no checkout."""
    if path is None or not (path / MODEL_FILE).is_file():
        where = "no --authors given" if path is None else f"{path / MODEL_FILE} not found"
        print(f"skipped: {where}; pass --authors PATH, a checkout of NeuroCompLab-psu/PSpikeSSMs")
        sys.exit(0)
    try:
        return import_authors(path)
    except ModuleNotFoundError as error:
        print(f"skipped: {error}")
        sys.exit(0)


def run_job(job: dict) -> dict:
    """One (side, seed) training run in a fresh process; returns its curve."""
    import torch

    torch.set_num_threads(1)
    from benchmarks.parity.ablations import apply_ablations, authors_overrides
    from benchmarks.parity.sides import ParityData, Schedule, authors_side, ours_side, train_curve

    data = ParityData(Path(job["data_dir"]))
    schedule = Schedule(steps=job["steps"], warmup=job["warmup"])
    if job["side"] == "authors":
        authors = import_authors(job["authors"])
        overrides = authors_overrides(job["ablations"])
        side = authors_side(
            data,
            authors,
            job["seed"],
            schedule,
            l_max=job["l_max"],
            device=job["device"],
            **overrides,
        )
    else:
        side = ours_side(
            Path(job["data_dir"]),
            job["seed"],
            schedule,
            job["configs"],
            job["args"],
            job["device"],
        )
    side = apply_ablations(side, job["ablations"])
    result = {**job, "curve": {}, "checks": data.checks()}
    eval_steps = set(job["eval_at"])

    def save(curve: dict) -> None:  # after every record: a run cut short keeps its curve
        if job["out_dir"]:
            result["curve"] = curve
            path = Path(job["out_dir"]) / f"{job['label']}.seed{job['seed']}.json"
            path.with_suffix(".tmp").write_text(json.dumps([result], indent=1) + "\n")
            path.with_suffix(".tmp").replace(path)

    def eval_at(step: int) -> bool:
        return step in eval_steps if eval_steps else step % job["eval_every"] == 0

    result["curve"] = train_curve(side, data, job["seed"], schedule, eval_at, save)
    return result


def evaluate_checkpoint(args: argparse.Namespace) -> dict[str, float]:
    """Both accuracies of a checkpoint of this project's config on the parity validation set
    (what ``pspikessm fit`` logged as ``val/acc`` is the macro one)."""
    import torch

    from benchmarks.parity.sides import ParityData, Schedule, accuracy, ours_side

    torch.set_num_threads(1)
    side = ours_side(args.data_dir, 0, Schedule(), args.ours_config, args.ours_arg)
    state = torch.load(args.ours_checkpoint, map_location="cpu", weights_only=False)
    side.model.load_state_dict(state["state_dict"])
    acc, macro = accuracy(side, ParityData(args.data_dir))
    return {"checkpoint_step": state.get("global_step"), "val_acc": acc, "val_macro_acc": macro}


def report(results: list[dict]) -> dict[str, float]:
    """``name=value`` numbers: per run, means over seeds, and authors minus ours."""
    lines: dict[str, object] = {}
    means: dict[str, dict[int, list[float]]] = {}
    for result in results:
        curve, label = result["curve"], result["label"]
        for step, acc, loss in zip(
            curve["step"], curve["val_acc"], curve["train_loss"], strict=True
        ):
            lines[f"{label}.seed{result['seed']}.step{step}.val_acc"] = acc
            lines[f"{label}.seed{result['seed']}.step{step}.train_loss"] = loss
            if curve.get("val_macro_acc"):  # runs saved before it was recorded lack it
                macro = curve["val_macro_acc"][curve["step"].index(step)]
                lines[f"{label}.seed{result['seed']}.step{step}.val_macro_acc"] = macro
            means.setdefault(label, {}).setdefault(step, []).append(acc)
        lines[f"{label}.seed{result['seed']}.s_per_step"] = curve["seconds"][-1] / curve["step"][-1]
    for label, steps in means.items():
        for step, accs in steps.items():
            lines[f"{label}.mean.step{step}.val_acc"] = sum(accs) / len(accs)
    reference = "authors" if "authors" in means else next(iter(means))
    for label in means:
        if label == reference:
            continue
        name = "diff" if len(means) == 2 else f"diff[{reference}-{label}]"
        for step in sorted(set(means[reference]) & set(means[label])):
            lines[f"{name}.mean.step{step}.val_acc"] = (
                lines[f"{reference}.mean.step{step}.val_acc"]
                - lines[f"{label}.mean.step{step}.val_acc"]
            )
    return lines


def table(results: list[dict]) -> str:
    """Markdown: per label, validation accuracy at every recorded step, mean over seeds (and
    each seed's value), and the mean training loss over the last interval."""
    runs: dict[str, list[dict]] = {}
    for result in results:
        runs.setdefault(result["label"], []).append(result)
    steps = sorted({s for r in results for s in r["curve"]["step"]})
    head = "| model | seeds | " + " | ".join(f"val acc @{s}" for s in steps)
    lines = [head + " | train loss (last) |", "|---" * (len(steps) + 3) + "|"]
    for label, group in runs.items():
        cells = []
        for step in steps:
            accs = [
                r["curve"]["val_acc"][r["curve"]["step"].index(step)]
                for r in group
                if step in r["curve"]["step"]
            ]
            each = " / ".join(f"{a:.3f}" for a in accs)
            cells.append(f"**{sum(accs) / len(accs):.3f}** ({each})" if accs else "")
        losses = [r["curve"]["train_loss"][-1] for r in group]
        seeds = ",".join(str(r["seed"]) for r in group)
        lines.append(
            f"| `{label}` | {seeds} | "
            + " | ".join(cells)
            + f" | {sum(losses) / len(losses):.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "parity-listops")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument(
        "--eval-at", type=int, nargs="+", default=[], help="evaluate at these steps instead"
    )
    parser.add_argument(
        "--out-dir",
        type=Path,
        help="each run writes <label>.seed<s>.json here after every evaluation (for --collect)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--jobs", type=int, default=2, help="training processes at once")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (every job on it)")
    parser.add_argument(
        "--sides", nargs="+", default=["authors", "ours"], choices=["authors", "ours"]
    )
    parser.add_argument(
        "--authors-l-max",
        type=int,
        default=2048,
        help="their kernel length (C~'s l_max); 0: the data's longest sequence",
    )
    parser.add_argument("--authors-ablation", action="append", default=[])
    parser.add_argument("--ours-config", action="append", default=[], help="overlay YAML")
    parser.add_argument("--ours-arg", action="append", default=[], help="CLI override")
    parser.add_argument("--ours-ablation", action="append", default=[])
    parser.add_argument("--json", type=Path, help="also write every curve to this file")
    parser.add_argument(
        "--collect", type=Path, nargs="+", help="no training: report the --json files given"
    )
    parser.add_argument(
        "--ours-checkpoint",
        type=Path,
        help="no training: both accuracies of this Lightning checkpoint of the ours config",
    )
    args = parser.parse_args(argv)
    if args.collect:
        results = [r for path in args.collect for r in json.loads(path.read_text())]
        emit(report(results))
        print(table(results))
        return
    if args.ours_checkpoint:
        emit(evaluate_checkpoint(args))
        return
    if "authors" in args.sides:  # `--sides ours` trains this project's model alone
        authors_or_skip(args.authors)
    from benchmarks.parity.ablations import describe
    from benchmarks.parity.sides import ParityData

    if args.out_dir:
        args.out_dir.mkdir(parents=True, exist_ok=True)
    checks = ParityData(args.data_dir).checks()  # generates the data once, before the workers
    emit(checks)
    emit(describe(args.authors_ablation, args.ours_ablation))
    common = {
        "data_dir": str(args.data_dir),
        "steps": args.steps,
        "warmup": args.warmup,
        "eval_every": args.eval_every,
        "eval_at": args.eval_at,
        "out_dir": str(args.out_dir) if args.out_dir else "",
        "device": args.device,
    }
    jobs = []
    for seed in args.seeds:
        if "authors" in args.sides:
            tag = "+".join(args.authors_ablation)
            jobs.append(
                {
                    **common,
                    "side": "authors",
                    "seed": seed,
                    "authors": str(args.authors),
                    "l_max": args.authors_l_max or checks["data_longest_sequence"],
                    "ablations": args.authors_ablation,
                    "label": "authors" + (f"[{tag}]" if tag else ""),
                }
            )
        if "ours" in args.sides:
            tag = "+".join(
                [Path(c).stem for c in args.ours_config] + args.ours_arg + args.ours_ablation
            )
            jobs.append(
                {
                    **common,
                    "side": "ours",
                    "seed": seed,
                    "configs": args.ours_config,
                    "args": args.ours_arg,
                    "ablations": args.ours_ablation,
                    "label": "ours" + (f"[{tag}]" if tag else ""),
                }
            )
    with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(run_job, jobs))
    emit(report(results))
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
