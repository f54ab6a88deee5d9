"""Issue 23's learning check: the ListOps config trained eager and compiled (``model.compile``)
from the same seeds on the same generated ListOps batches reaches the same loss curve, to
within the spread between seeds.

    python -m benchmarks.speed.compile_learning                       # 300 steps, seeds 0 1 2
    python -m benchmarks.speed.compile_learning --steps 60 --seeds 0 1 --batch 8   # shorter

The model of ``configs/lra/listops.yaml`` (DPLR, two branches, BatchNorm); AdamW (this
package's groups) at a constant ``--lr`` (the config's 12k-step warm-up would leave 300 steps
at almost no learning rate). The data: expressions of the LRA grammar, 20-200 tokens, depth
up to 6, generated from a fixed seed; every batch padded to ``--bucket`` tokens
(``data.length_buckets``), so the compiled model sees one shape. Both variants draw their
spikes from the same seed, but inductor draws other random numbers than eager PyTorch, so the
curves agree in distribution, not value by value: the check compares, per seed, the mean
training loss of the last ``--window`` steps, eager against compiled, with the spread of that
mean across seeds. Prints ``name=value`` lines; ``--out`` keeps the curves as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.harness import emit, machine
from benchmarks.speed.train import ROOT, build_module
from pspikessm.data.collate import pad_collate
from pspikessm.data.listops_generator import ListOpsGeneratorConfig, generate_rows
from pspikessm.data.tasks.listops import VOCABULARY, tokenize
from pspikessm.optim import build_adamw


def batches(steps: int, batch: int, bucket: int) -> list[tuple[torch.Tensor, ...]]:
    """``steps`` batches ``(tokens (B, bucket), lengths (B,), targets (B,))``, seed 0."""
    config = ListOpsGeneratorConfig(min_length=20, max_length=bucket - 1, max_depth=6, seed=0)
    rows = generate_rows(config, steps * batch, random.Random(0), set())
    items = [
        (torch.tensor([*VOCABULARY.encode(tokenize(source)), VOCABULARY.eos_id]), target)
        for source, target in rows
    ]
    return [
        pad_collate(items[i * batch : (i + 1) * batch], length_buckets=[bucket])
        for i in range(steps)
    ]


def train(data, seed: int, compiled: bool, lr: float) -> tuple[list[float], float]:
    """Training losses of one run and its wall time per step after the first (compile) step."""
    torch.manual_seed(seed)
    module = build_module(
        ROOT / "configs/lra/listops.yaml", num_classes=10, vocab_size=len(VOCABULARY)
    ).train()
    if compiled:
        torch._dynamo.reset()
        module.backbone.compile()
    optimizer = build_adamw(module, lr, module.hparams.weight_decay)
    losses, begun = [], 0.0
    for step, (inputs, lengths, targets) in enumerate(data):
        if step == 1:
            begun = time.perf_counter()
        loss = F.cross_entropy(module(inputs, lengths), targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    return losses, (time.perf_counter() - begun) / max(1, len(data) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--bucket", type=int, default=256)
    parser.add_argument("--lr", type=float, default=8e-4)
    parser.add_argument("--window", type=int, default=50, help="steps of the final mean")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, help="write the curves here (JSON)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    emit({"loadavg": machine()["loadavg"]})
    data = batches(args.steps, args.batch, args.bucket)
    curves: dict[str, dict[int, list[float]]] = {"eager": {}, "compiled": {}}
    finals: dict[str, list[float]] = {"eager": [], "compiled": []}
    for seed in args.seeds:
        for variant in curves:
            losses, per_step = train(data, seed, variant == "compiled", args.lr)
            curves[variant][seed] = losses
            final = statistics.fmean(losses[-args.window :])
            finals[variant].append(final)
            emit({f"{variant}_seed{seed}_final_loss": final, f"{variant}_s_per_step": per_step})
    gaps = [c - e for c, e in zip(finals["compiled"], finals["eager"], strict=True)]
    spread = max(statistics.pstdev(finals["eager"]), statistics.pstdev(finals["compiled"]))
    emit(
        {
            "first_loss": curves["eager"][args.seeds[0]][0],
            "mean_gap_compiled_minus_eager": statistics.fmean(gaps),
            "seed_spread": spread,
            "same_within_seed_spread": abs(statistics.fmean(gaps)) <= spread,
            "loadavg_end": machine()["loadavg"],
        }
    )
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "curves": curves})
        )


if __name__ == "__main__":
    main()
