"""Training step of the authors' code, the paper config eager and the paper config compiled,
in one run on the same batches: ListOps at batch 8 and 32 (L = 2048), Path-X at batch 2 and
16 (L = 16384). Issue 23's measurement; ``benchmarks/gpu/speed.sh`` runs it on a GPU.

    python -m benchmarks.speed.gpu --authors .authors               # on a GPU machine
    python -m benchmarks.speed.gpu --device cpu --quick --no-write  # tiny: checks the script

Per case and side: step time (median after warm-up; CUDA events on a GPU), samples/s, peak
GPU memory, compile time (the compiled side's warm-up steps less as many timed steps), and
the step's memory-traffic floor: the bytes every ATen op of one eager step (forward,
backward, AdamW) reads and writes, counted by a dispatch mode (views move nothing), over the
device's bandwidth (``--bandwidth``, 4.8 TB/s: an H200). ``floor_ratio`` = step time /
floor says how far a side is from what the memory system allows for that op sequence (a
fused kernel reads and writes less, so it can beat the floor; a ratio near 1 means the step
is memory bound). Sides are timed one after the other (a GPU is not shared), each freed
before the next. The authors' Path-X side is their model with their Pathfinder experiment's
settings (6 layers, H = 256, N = 64, one SSM per neuron, pre-norm, dropout 0.1) at
L = 16384; its input is 256 grey levels through an embedding where theirs is a linear map
of the pixel (the same cost to within one (B, L, H) pass). A side that fails (out of
memory, a compile error) is reported as failed and the rest go on. Writes the ``gpu_speed``
section of ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.harness import (
    command_line,
    default_device,
    emit,
    machine,
    machine_line,
    set_threads,
    write_results,
)
from benchmarks.speed.ops import OpCounter
from benchmarks.speed.train import ROOT, build_module, make_step

#: (name, task, batch, length): the four cases of issue 23.
CASES = (
    ("listops_b8", "listops", 8, 2048),
    ("listops_b32", "listops", 32, 2048),
    ("pathx_b2", "pathx", 2, 16384),
    ("pathx_b16", "pathx", 16, 16384),
)
CONFIGS = {"listops": ROOT / "configs/lra/listops.yaml", "pathx": ROOT / "configs/lra/pathx.yaml"}
VOCAB = {"listops": 18, "pathx": 256}  # Path-X: grey levels (the authors' side embeds them)
CLASSES = {"listops": 10, "pathx": 2}
#: --quick: every case at this length, the models at this width and depth (the kernels keep
#: their l_max): a check that the script runs, not a measurement.
QUICK = {"length": 64, "d_model": 16, "n_layers": 2}


def batch_of(task: str, batch: int, length: int, device: torch.device):
    """``(tokens (B, L) int64, lengths (B,), targets (B,))``, every sequence full (seed 0)."""
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(1, VOCAB[task], (batch, length), generator=generator)
    targets = torch.randint(CLASSES[task], (batch,), generator=generator)
    lengths = torch.full((batch,), length)
    return tokens.to(device), lengths.to(device), targets.to(device)


def our_step(task: str, batch, args, compiled: bool):
    """This project's step for the task's config (fused AdamW on a GPU), compiled or not."""
    linked = {"num_classes": CLASSES[task], "vocab_size": VOCAB[task]}
    if args.quick:
        linked.update(d_model=QUICK["d_model"], n_layers=QUICK["n_layers"])
    torch.manual_seed(0)
    module = build_module(CONFIGS[task], **linked).to(batch[0].device).train()
    if compiled:
        module.backbone.compile(mode=args.compile_mode, backend=args.compile_backend)
    return make_step(module, batch, "32")


def authors_side(authors, task: str, batch, args):
    """The authors' model and optimiser for the task (ListOps: their ListOps experiment;
    Path-X: their Pathfinder experiment's settings at L = 16384)."""
    from authors_model import authors_optimizer, build_authors_model

    layer, backbone = {"l_max": batch[0].shape[1]}, {}
    lr, weight_decay, warmup, total = 8e-4, 0.01, 12000, 120000
    if task == "pathx":
        layer.update(d_state=64, n_ssm=None, lr={"dt": 1e-3, "A": 1e-3, "B": 1e-3})
        backbone.update(d_model=256, n_layers=6, prenorm=True, dropout=0.1)
        lr, weight_decay, warmup, total = 2e-4, 0.0, 50000, 500000
    if args.quick:
        backbone.update(d_model=QUICK["d_model"], n_layers=QUICK["n_layers"])
    torch.manual_seed(0)
    model = build_authors_model(authors, VOCAB[task], backbone, **layer)
    model = model.to(batch[0].device).train()
    optimizer, schedule = authors_optimizer(authors, model, lr, weight_decay, warmup, total)
    inputs, lengths, targets = batch

    def step() -> None:
        F.cross_entropy(model(inputs, lengths), targets).backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def measure(step, device: torch.device, args) -> dict[str, float]:
    """Warm-up (compiles, records CUDA graphs), timed steps, peak memory, traffic count."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    begin = time.perf_counter()
    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    warmup_s = time.perf_counter() - begin
    times = []
    for _ in range(args.repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            step()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1e3)
        else:
            begin = time.perf_counter()
            step()
            times.append(time.perf_counter() - begin)
    seconds = sorted(times)[len(times) // 2]
    out = {"s_per_step": seconds, "warmup_s": warmup_s, "first_steps_extra_s": 0.0}
    out["first_steps_extra_s"] = max(0.0, warmup_s - args.warmup * seconds)
    if device.type == "cuda":
        out["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def traffic(step) -> tuple[int, int]:
    """Bytes moved and launching ops of one eager step (:class:`~benchmarks.speed.ops.OpCounter`:
    views and aliases move nothing and launch nothing)."""
    with OpCounter() as count:
        step()
    return count.bytes, sum(count.ops.values())


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_case(name, task, batch_size, length, args, device, authors) -> dict[str, object]:
    length = QUICK["length"] if args.quick else length
    batch = batch_of(task, batch_size, length, device)
    sides = {"eager": lambda: our_step(task, batch, args, compiled=False)}
    if authors is not None:
        sides = {"authors": lambda: authors_side(authors, task, batch, args), **sides}
    sides["compiled"] = lambda: our_step(task, batch, args, compiled=True)
    results: dict[str, object] = {"batch": batch_size, "length": length}
    for side, build in sides.items():
        torch._dynamo.reset()  # every case compiles for its own static shapes
        try:
            step = build()
            numbers = measure(step, device, args)
            if side != "compiled":  # the compiled side runs the eager side's op sequence
                traffic_b, numbers["ops"] = traffic(step)
                numbers["traffic_gb"] = traffic_b / 1e9
            del step
        except Exception as error:  # out of memory, a compile error: report, go on
            numbers = {"failed": f"{type(error).__name__}: {str(error)[:300]}"}
        free(device)
        if "s_per_step" in numbers:
            numbers["samples_per_s"] = batch_size / numbers["s_per_step"]
        if side == "compiled":
            extra = numbers.pop("first_steps_extra_s", None)
            if extra is not None:
                numbers["compile_s"] = extra
        results[side] = numbers
        emit({f"{name}_{side}_{key}": value for key, value in numbers.items()})
    add_ratios(results, args.bandwidth)
    return results


def add_ratios(results: dict, bandwidth: float) -> None:
    """Speed-ups over the authors' step and every side's distance from the traffic floor."""
    eager = results.get("eager", {})
    floor = eager.get("traffic_gb", 0) * 1e9 / bandwidth if "traffic_gb" in eager else None
    authors = results.get("authors", {})
    for side in ("authors", "eager", "compiled"):
        numbers = results.get(side, {})
        if "s_per_step" not in numbers:
            continue
        side_floor = numbers.get("traffic_gb", 0) * 1e9 / bandwidth or floor
        if side_floor:
            numbers["floor_ms"] = side_floor * 1e3
            numbers["floor_ratio"] = numbers["s_per_step"] / side_floor
        if "s_per_step" in authors:
            numbers["speedup_vs_authors"] = authors["s_per_step"] / numbers["s_per_step"]


def table(all_results: dict[str, dict], args) -> str:
    columns = ("s_per_step", "samples_per_s", "peak_gib", "compile_s", "floor_ms", "floor_ratio")
    columns += ("ops", "speedup_vs_authors")
    rows = ["| case | side | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for case, results in all_results.items():
        for side in ("authors", "eager", "compiled"):
            numbers = results.get(side)
            if numbers is None:
                continue
            if "failed" in numbers:
                rows.append(f"| {case} | {side} | failed: {numbers['failed'][:120]} |")
                continue
            cells = [
                f"{numbers[c]:.3g}" if isinstance(numbers.get(c), float | int) else "–"
                for c in columns
            ]
            rows.append(f"| {case} | {side} | " + " | ".join(cells) + " |")
    return (
        f"## GPU speed (`{command_line()}`)\n\n"
        f"One training step (forward, cross-entropy, backward, AdamW) of the authors' code "
        f"(`authors`), the task config eager (`eager`) and compiled (`compiled`: "
        f"`model.compile: {args.compile_mode}`) on the same full-length batches; median of "
        f"{args.repeats} steps after {args.warmup} warm-up; `compile_s`: the compiled side's "
        f"warm-up time beyond {args.warmup} steps; `floor_ms`: the bytes the eager step's ATen "
        f"ops read and write over {args.bandwidth / 1e12:g} TB/s (the compiled side is "
        f"measured against the eager floor); `ops`: the launching ATen ops of one eager step "
        f"as run (views excluded; `benchmarks/speed/ops.py`).\n\n" + "\n".join(rows)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if any)")
    parser.add_argument("--cases", nargs="+", default=[c[0] for c in CASES])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3, help="CUDA graphs record at step 3")
    parser.add_argument("--compile-mode", default="reduce-overhead")
    parser.add_argument("--compile-backend", default="inductor")
    parser.add_argument("--bandwidth", type=float, default=4.8e12, help="bytes/s (H200)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args()
    set_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    authors = None
    if args.authors is not None:
        from benchmarks.authors import MODEL_FILE, import_authors

        if (args.authors / MODEL_FILE).is_file():
            authors = import_authors(args.authors)
        else:
            print(f"authors: {args.authors} is no checkout; their side is skipped")
    info = machine()
    emit({"device": info["device"], "loadavg": info["loadavg"]})
    all_results = {}
    for name, task, batch, length in CASES:
        if name not in args.cases:
            continue
        all_results[name] = run_case(name, task, batch, length, args, device, authors)
        if not args.no_write:  # after every case: a run cut short keeps what it measured
            text = table(all_results, args) + f"\n\n{machine_line(info)}"
            write_results("gpu_speed", {"machine": info, "results": all_results}, text)


if __name__ == "__main__":
    main()
