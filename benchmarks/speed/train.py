"""Training throughput of the ListOps config (the paper's block and the fast variant side by
side) and peak memory of the Path-X config.

    python -m benchmarks.speed.train                                  # both, as shipped
    python -m benchmarks.speed.train --pathx-config my/pathx.yaml     # another Path-X config
    python -m benchmarks.speed.train --skip-pathx --batch 32          # ListOps at the config's batch

ListOps: the model of ``configs/lra/listops.yaml`` (the authors' experiment: S4 DPLR kernel,
two branches) and of the same config with ``configs/model/fast.yaml`` (S4D kernel, one branch),
each built by jsonargparse from the configs' ``model:`` sections as the CLI builds it, train on
synthetic ListOps-shaped batches (random tokens, every sequence full length) at batch 8 and
length 2048 by default: the setting the paper's implementation was timed at (3.3-3.6 s per
step on a 2-core CPU). The two are timed interleaved in one run; ``listops_paper_over_fast``
is their ratio. A step is forward, backward and the AdamW update. Path-X: the model of ``configs/lra/pathx.yaml`` trains a few steps at
batch 2 and length 16384 (1 input channel) in a subprocess; its peak resident set size is the
child's own ``ru_maxrss``. On a GPU every run uses CUDA events and is repeated in
``bf16-mixed``; Path-X also reports the peak CUDA memory.

Prints ``name=value`` lines, writes ``benchmarks/results/train_<device>.json`` and the
``train`` section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from jsonargparse import ArgumentParser

from benchmarks.harness import (
    ROOT,
    command_line,
    default_device,
    emit,
    machine,
    machine_line,
    median,
    set_threads,
    time_interleaved,
    write_results,
)
from pspikessm.cli.train import TASK_DEFAULTS
from pspikessm.module import SequenceClassifier
from pspikessm.optim import build_adamw

PAPER_LISTOPS_S_PER_STEP = (3.3, 3.6)  # the paper's code, batch 8, L=2048, this 2-core CPU
FAST = ROOT / "configs/model/fast.yaml"


def build_module(*configs: Path, **linked: int) -> SequenceClassifier:
    """The LightningModule of the configs' ``model:`` sections, merged in order as the CLI
    merges them (later files win); ``linked`` stands in for what the data module would link
    (num_classes, vocab_size, d_input)."""
    parser = ArgumentParser()
    parser.add_class_arguments(SequenceClassifier, "model")
    # The CLI's model defaults (the backbone class), which task configs leave unwritten.
    parser.set_defaults({k: v for k, v in TASK_DEFAULTS.items() if k.startswith("model.")})
    merged = None
    for config in configs:
        if not config.exists():
            raise FileNotFoundError(f"{config}: config not found; pass its path (see --help)")
        model = yaml.safe_load(config.read_text())["model"]
        merged = parser.parse_object({"model": model}, namespace=merged, defaults=merged is None)
    for name, value in linked.items():
        merged[f"model.backbone.init_args.{name}"] = value
    merged["model.num_classes"] = linked["num_classes"]
    return parser.instantiate(merged).model


def make_step(
    module: SequenceClassifier, batch: tuple[torch.Tensor, ...], precision: str
) -> Callable[[], None]:
    """One training step: forward, cross-entropy, backward, AdamW update."""
    hp = module.hparams
    optimizer = build_adamw(module, hp.lr, hp.weight_decay, hp.betas)  # fused on GPUs
    inputs, lengths, targets = batch
    device = inputs.device

    def step() -> None:
        with (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if precision == "bf16-mixed"
            else contextlib.nullcontext()
        ):
            logits = module(inputs, lengths)
        F.cross_entropy(logits.float(), targets).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def synthetic_batch(
    batch: int, length: int, num_classes: int, device: torch.device, vocab_size: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(inputs, lengths, targets)`` as the data modules make them, every sequence full."""
    generator = torch.Generator().manual_seed(0)
    if vocab_size:
        inputs = torch.randint(1, vocab_size, (batch, length), generator=generator)
    else:
        inputs = torch.rand(batch, length, 1, generator=generator)
    lengths = torch.full((batch,), length)
    targets = torch.randint(num_classes, (batch,), generator=generator)
    return inputs.to(device), lengths.to(device), targets.to(device)


def listops(args: argparse.Namespace, device: torch.device, precision: str) -> dict[str, float]:
    batch = synthetic_batch(args.batch, args.length, 10, device, args.vocab_size)
    steps = {}
    variants = {"paper": [args.listops_config], "fast": [args.listops_config, FAST]}
    if args.breakdown:  # what the fast variant drops, one piece at a time
        for overlay in ("one_branch", "diag"):
            variants[overlay] = [args.listops_config, ROOT / f"configs/model/{overlay}.yaml"]
    for name, configs in variants.items():
        torch.manual_seed(0)
        module = build_module(*configs, num_classes=10, vocab_size=args.vocab_size).to(device)
        steps[name] = make_step(module.train(), batch, precision)
    times = time_interleaved(steps, device, args.repeats, args.warmup)
    tag = "" if precision == "32" else "_bf16"
    results = {}
    for name in steps:
        seconds = median(times[name]["wall"])
        results[f"listops_{name}{tag}_s_per_step"] = seconds
        results[f"listops_{name}{tag}_samples_per_s"] = args.batch / seconds
        if device.type == "cpu":
            results[f"listops_{name}_cpu_s_per_step"] = median(times[name]["cpu"])
    for name in steps:
        if name != "fast":
            ratios = [
                v / f for v, f in zip(times[name]["wall"], times["fast"]["wall"], strict=True)
            ]
            results[f"listops_{name}_over_fast{tag}"] = median(ratios)
    if device.type == "cpu" and args.batch == 8 and args.length == 2048:
        for name in steps:
            seconds = results[f"listops_{name}_s_per_step"]
            results[f"listops_{name}_speedup_vs_paper_code"] = PAPER_LISTOPS_S_PER_STEP[0] / seconds
    emit(results)
    return results


def pathx_child(args: argparse.Namespace) -> None:
    """Runs in the subprocess: a few Path-X training steps; prints its own numbers as JSON."""
    device = default_device()
    torch.manual_seed(0)
    module = build_module(args.pathx_config, num_classes=2, vocab_size=0, d_input=1).to(device)
    module.train()
    batch = synthetic_batch(args.pathx_batch, args.pathx_length, 2, device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    times = time_interleaved(
        {"step": make_step(module, batch, args.precision)}, device, args.pathx_steps, warmup=1
    )
    out = {
        "s_per_step": median(times["step"]["wall"]),
        "cpu_s_per_step": median(times["step"]["cpu"]),
        "rss_before_training_gib": rss_before,
    }
    if device.type == "cuda":
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    print("PATHX " + json.dumps(out), flush=True)


def pathx(args: argparse.Namespace, device: torch.device, precision: str) -> dict[str, float]:
    # As a module from the repository root (cwd), as it was started.
    command = [sys.executable, "-m", "benchmarks.speed.train", "--pathx-child"]
    command += ["--precision", precision]
    command += ["--pathx-config", str(args.pathx_config), "--pathx-steps", str(args.pathx_steps)]
    command += ["--pathx-batch", str(args.pathx_batch), "--pathx-length", str(args.pathx_length)]
    command += ["--threads", str(args.threads)] if args.threads else []
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if run.returncode:
        raise RuntimeError(f"Path-X child failed ({run.returncode}):\n{run.stderr[-3000:]}")
    child = json.loads(run.stdout.split("PATHX ", 1)[1])
    # ru_maxrss of the largest waited-for child in KiB on Linux: the only child is this one.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    tag = "" if precision == "32" else "_bf16"
    results = {
        f"pathx{tag}_peak_rss_gib": peak,
        f"pathx{tag}_rss_before_training_gib": child["rss_before_training_gib"],
        f"pathx{tag}_s_per_step": child["s_per_step"],
    }
    if device.type == "cpu":
        results["pathx_cpu_s_per_step"] = child["cpu_s_per_step"]
    if "cuda_peak_gib" in child:
        results[f"pathx{tag}_cuda_peak_gib"] = child["cuda_peak_gib"]
    emit(results)
    return results


def table(results: dict[str, float], args: argparse.Namespace, precisions: list[str]) -> str:
    rows = ["| measurement | value |", "|---|---|"]
    for name, value in results.items():
        rows.append(f"| `{name}` | {value:.3g} |")
    paper = "–".join(f"{t:g}" for t in PAPER_LISTOPS_S_PER_STEP)
    return (
        f"## Training (`{command_line()}`)\n\n"
        f"ListOps: `{args.listops_config.relative_to(ROOT)}`'s model (`paper`) and the same "
        f"with `configs/model/fast.yaml` (`fast`; with `--breakdown` also `one_branch` and "
        f"`diag`, the overlays of those names), timed interleaved, synthetic batches of "
        f"{args.batch} full-length sequences of {args.length} tokens (vocabulary "
        f"{args.vocab_size}); a step is forward, backward and the AdamW update; median of "
        f"{args.repeats} steps after {args.warmup} warm-up (`_cpu_` entries: the process's CPU "
        f"time, all threads, less distorted by other processes). The paper's implementation: "
        f"{paper} s per step at batch 8, L=2048 on this 2-core CPU (idle). Path-X: "
        f"`{args.pathx_config}`'s model, batch {args.pathx_batch}, length "
        f"{args.pathx_length}, 1 channel, {args.pathx_steps} steps after 1 warm-up in a "
        f"subprocess; peak RSS is that process's `ru_maxrss`. Precisions: "
        f"{', '.join(precisions)}.\n\n"
    ) + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listops-config", type=Path, default=ROOT / "configs/lra/listops.yaml")
    parser.add_argument("--pathx-config", type=Path, default=ROOT / "configs/lra/pathx.yaml")
    parser.add_argument("--batch", type=int, default=8, help="ListOps batch (config: 32)")
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--vocab-size", type=int, default=18, help="ListOps tokens incl. pad/eos")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pathx-batch", type=int, default=2)
    parser.add_argument("--pathx-length", type=int, default=16384)
    parser.add_argument("--pathx-steps", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time the ListOps config with configs/model/one_branch.yaml and diag.yaml",
    )
    parser.add_argument("--skip-pathx", action="store_true")
    parser.add_argument("--skip-listops", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    parser.add_argument("--pathx-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="32", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.listops_config, args.pathx_config = args.listops_config.resolve(), args.pathx_config
    set_threads(args.threads)
    if args.pathx_child:
        pathx_child(args)
        return

    device = default_device()
    info = machine()
    emit({"device": info["device"], "nproc": info["nproc"], "loadavg": info["loadavg"]})
    precisions = ["32"] + (["bf16-mixed"] if device.type == "cuda" else [])
    results: dict[str, float] = {}
    for precision in precisions:
        if not args.skip_pathx:
            results.update(pathx(args, device, precision))
        if not args.skip_listops:
            results.update(listops(args, device, precision))
    info["loadavg_end"] = machine()["loadavg"]
    emit({"loadavg_end": info["loadavg_end"]})
    if args.no_write:
        return
    md = table(results, args, precisions) + (
        f"\n\n{machine_line(info)} Load average at end: {' '.join(info['loadavg_end'] or [])}."
    )
    payload = {"machine": info, "args": {k: str(v) for k, v in vars(args).items()}}
    write_results(
        "train" + (f"_threads{args.threads}" if args.threads else ""),
        {**payload, "results": results},
        md,
    )


if __name__ == "__main__":
    main()
