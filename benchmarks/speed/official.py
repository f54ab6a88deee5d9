"""Training step of the authors' ListOps model (their code) beside this project's ListOps
config, on the same batches in the same run.

    python -m benchmarks.speed.official --authors /path/to/PSpikeSSMs       # batch 8, L = 2048
    python -m benchmarks.speed.official --authors PATH --device cuda --batch 32

The authors' side is their code from a checkout (``benchmarks/authors.py``: their
``SequenceModel`` with the ListOps experiment's settings, their optimiser groups and schedule,
their pure-torch Cauchy kernel; ``pip install einops omegaconf``). This project's side is
``configs/lra/listops.yaml`` (the same experiment) and, for reference, the same config with
``configs/model/fast.yaml``. A step is forward, cross-entropy, backward and the optimiser
update, on synthetic ListOps-shaped batches (random tokens, full length); the three are timed
round-robin. Prints ``name=value`` lines, among them ``faithful_speedup_vs_official`` (their
step time / ours), and writes the ``official`` section of ``benchmarks/RESULTS.md``. Without a
checkout it prints why and exits 0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.authors import MODEL_FILE, authors_optimizer, build_authors_model, import_authors
from benchmarks.harness import (
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
from benchmarks.speed.train import FAST, ROOT, build_module, make_step, synthetic_batch

VOCAB = 18  # the ListOps vocabulary (pad, unk, eos and 15 symbols), the same on both sides


def authors_step(authors, batch, args):
    """One training step of their model with their optimiser groups and schedule."""
    model = build_authors_model(authors, VOCAB, l_max=args.length).to(batch[0].device).train()
    optimizer, schedule = authors_optimizer(
        authors, model, lr=8e-4, weight_decay=0.01, warmup=12000, total=120000
    )
    inputs, lengths, targets = batch

    def step() -> None:
        F.cross_entropy(model(inputs, lengths), targets).backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    parser.add_argument("--config", type=Path, default=ROOT / "configs/lra/listops.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: all)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if any)")
    parser.add_argument("--no-write", action="store_true", help="print only; keep RESULTS.md")
    args = parser.parse_args()
    if args.authors is None or not (args.authors / MODEL_FILE).is_file():
        where = "no --authors given" if args.authors is None else f"{args.authors} is no checkout"
        print(f"skipped: {where}; pass --authors PATH, a checkout of NeuroCompLab-psu/PSpikeSSMs")
        return
    set_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    authors = import_authors(args.authors)
    batch = synthetic_batch(args.batch, args.length, 10, device, VOCAB)
    steps = {}
    for name, configs in (("faithful", [args.config]), ("fast", [args.config, FAST])):
        torch.manual_seed(0)
        module = build_module(*configs, num_classes=10, vocab_size=VOCAB).to(device)
        steps[name] = make_step(module.train(), batch, "32")
    torch.manual_seed(0)
    steps["official"] = authors_step(authors, batch, args)
    times = time_interleaved(steps, device, args.repeats, args.warmup)
    results = {f"{name}_s_per_step": median(times[name]["wall"]) for name in steps}
    for name in ("faithful", "fast"):
        ratios = [
            o / t for o, t in zip(times["official"]["wall"], times[name]["wall"], strict=True)
        ]
        results[f"{name}_speedup_vs_official"] = median(ratios)
    info = machine()
    emit(results)
    if args.no_write:
        return
    rows = ["| measurement | value |", "|---|---|"]
    rows += [f"| `{name}` | {value:.3g} |" for name, value in results.items()]
    text = (
        f"## The authors' code beside this project (`{command_line()}`)\n\n"
        f"ListOps, batch {args.batch}, length {args.length}: their model and optimiser "
        f"(`official`), `{args.config.relative_to(ROOT)}` (`faithful`) and the same with "
        f"`configs/model/fast.yaml` (`fast`), one training step each, timed round-robin; "
        f"median of {args.repeats} after {args.warmup} warm-up.\n\n"
        + "\n".join(rows)
        + f"\n\n{machine_line(info)}"
    )
    write_results("official", {"machine": info, "results": results}, text)


if __name__ == "__main__":
    main()
