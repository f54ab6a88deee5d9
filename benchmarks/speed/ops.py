"""Launching ATen ops per training step: the CPU-side count of what an eager GPU step launches.

    python -m benchmarks.speed.ops                                   # every task config + fast
    python -m benchmarks.speed.ops --config configs/lra/listops.yaml --authors .authors
    python -m benchmarks.speed.ops --config configs/lra/listops.yaml --fast --by-op 20

An eager step of a small model on a GPU waits for kernel launches, not for arithmetic: the
number of ops it dispatches is what CUDA graphs and ``torch.compile`` hide when they work. A
``TorchDispatchMode`` sees every op below autograd (the backward's too); the ops that only
make a view or an alias (:data:`VIEW_OPS`) are not counted, every other one is. A step is the
config's model (``model:`` sections merged as the CLI merges them) on synthetic full-length
batches, cross-entropy, backward, and a for-each AdamW update over the model's parameter groups
(what a GPU runs when the fused update is off); counted on the second step, after the first has
made the optimiser state. ``--authors PATH`` adds the authors' ListOps model (their code, their
optimiser groups) at the same batch and length.

Prints ``name=value`` lines (``<config>_forward``, ``_backward``, ``_optimizer``, ``_total``)
and writes the ``ops`` section of ``benchmarks/RESULTS.md`` (``--no-write``: only print).
"""

from __future__ import annotations

import argparse
import importlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.harness import command_line, emit, machine, machine_line, write_results
from benchmarks.speed.train import FAST, ROOT, build_module, synthetic_batch
from pspikessm.optim import parameter_groups

#: Ops that make a view or an alias and launch no work (their ``.default`` and other overloads).
VIEW_OPS = frozenset(
    [
        "view",
        "reshape",
        "flatten",
        "unsqueeze",
        "squeeze",
        "expand",
        "slice",
        "select",
        "narrow",
        "split",
        "split_with_sizes",
        "unbind",
        "transpose",
        "permute",
        "t",
        "detach",
        "alias",
        "as_strided",
        "view_as_real",
        "view_as_complex",
        "_conj",
        "_unsafe_view",
        "_reshape_alias",
    ]
)
TASK_CONFIGS = sorted((ROOT / "configs").glob("*/*.yaml"))
TASK_CONFIGS = [c for c in TASK_CONFIGS if c.parent.name in ("lra", "mnist", "speech")]


class OpCounter(TorchDispatchMode):
    """Counts the launching ops dispatched while active, by op name (``aten.mul.Tensor``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__.rstrip("_") not in VIEW_OPS:
            self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))


def count_phases(
    forward: Callable[[], torch.Tensor], optimizer: torch.optim.Optimizer
) -> dict[str, Counter[str]]:
    """The ops of one step's forward (loss included), backward and optimiser update."""
    counts = {}
    for phase in ("forward", "backward", "optimizer"):
        with OpCounter() as counter:
            if phase == "forward":
                loss = forward()
            elif phase == "backward":
                loss.backward()
            else:
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
        counts[phase] = counter.ops
    return counts


def linked_values(config: Path) -> dict:
    """What the config's data module would link into the model (the CLI's links), from the
    data class's attributes: tokens (a vocabulary) or real inputs, two documents or one."""
    data = yaml.safe_load(config.read_text()).get("data") or {}
    module_name, _, class_name = data["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    tokens = "vocab_size" in (cls.__doc__ or "") or class_name == "ListOpsDataModule"
    return {
        "num_classes": int(getattr(cls, "num_classes", 10)),
        "vocab_size": 18 if tokens else 0,  # the size changes no op count
        "d_input": 1,
        "dual_input": bool(getattr(cls, "dual_input", False)),
    }


def step_counts(configs: list[Path], batch: int, length: int) -> dict[str, Counter[str]]:
    """Per phase, the ops of the second training step of the configs' model."""
    linked = linked_values(configs[0])
    torch.manual_seed(0)
    module = build_module(*configs, **linked).train()
    if linked["dual_input"]:
        inputs = torch.stack(
            [synthetic_batch(batch, length, 2, torch.device("cpu"), 18)[0] for _ in range(2)], 1
        )
        _, lengths, targets = synthetic_batch(batch, length, 2, torch.device("cpu"), 18)
        lengths = torch.stack([lengths, lengths], 1)
    else:
        inputs, lengths, targets = synthetic_batch(
            batch, length, linked["num_classes"], torch.device("cpu"), linked["vocab_size"]
        )
    hp = module.hparams
    groups = parameter_groups(module, hp.lr, hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, foreach=True)
    return two_steps(lambda: F.cross_entropy(module(inputs, lengths), targets), optimizer)


def two_steps(forward: Callable[[], torch.Tensor], optimizer) -> dict[str, Counter[str]]:
    count_phases(forward, optimizer)  # the first step makes the optimiser's state
    return count_phases(forward, optimizer)


def authors_counts(path: str, batch: int, length: int) -> dict[str, Counter[str]]:
    """The authors' ListOps model and optimiser groups (their code from ``path``)."""
    from benchmarks.authors import authors_optimizer, build_authors_model, import_authors

    authors = import_authors(path)
    torch.manual_seed(0)
    model = build_authors_model(authors, 18, l_max=length).train()
    optimizer, _ = authors_optimizer(
        authors, model, lr=8e-4, weight_decay=0.01, warmup=12000, total=120000
    )
    for group in optimizer.param_groups:
        group["foreach"] = True
    inputs, lengths, targets = synthetic_batch(batch, length, 10, torch.device("cpu"), 18)
    return two_steps(lambda: F.cross_entropy(model(inputs, lengths), targets), optimizer)


def summary(counts: dict[str, Counter[str]]) -> dict[str, int]:
    totals = {phase: sum(ops.values()) for phase, ops in counts.items()}
    return {**totals, "total": sum(totals.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, action="append", help="task config (repeatable)")
    parser.add_argument("--fast", action="store_true", help="only with configs/model/fast.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--authors", help="the authors' checkout: add their ListOps model")
    parser.add_argument("--by-op", type=int, default=0, help="print the N most frequent ops")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    configs = args.config or TASK_CONFIGS
    variants: dict[str, list[Path]] = {}
    for config in configs:
        name = config.stem
        if not args.fast:
            variants[name] = [config]
        if config.stem == "listops" or args.fast:
            variants[f"{name}+fast"] = [config, FAST]
    rows: dict[str, dict[str, int]] = {}
    results: dict[str, int] = {}
    for name, stack in variants.items():
        counts = step_counts(stack, args.batch, args.length)
        rows[name] = summary(counts)
        results.update({f"{name}_{k}": v for k, v in rows[name].items()})
        emit({f"{name}_{k}": v for k, v in rows[name].items()})
        if args.by_op:
            both = sum(counts.values(), Counter())
            for op, n in both.most_common(args.by_op):
                print(f"  {n:5d} {op}")
    if args.authors:
        rows["authors listops"] = summary(authors_counts(args.authors, args.batch, args.length))
        results.update({f"authors_{k}": v for k, v in rows["authors listops"].items()})
        emit({f"authors_{k}": v for k, v in rows["authors listops"].items()})
    if args.no_write:
        return
    info = machine()
    lines = [
        f"## Launching ops per training step (`{command_line()}`)",
        "",
        f"Batch {args.batch}, length {args.length}; ATen ops below autograd, views and aliases "
        "excluded (`benchmarks/speed/ops.py`), for-each AdamW; the second step of each model.",
        "",
        "| model | forward | backward | optimiser | total |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {r['forward']} | {r['backward']} | {r['optimizer']} | {r['total']} |"
            for name, r in rows.items()
        ),
        "",
        machine_line(info),
    ]
    write_results("ops", {"machine": info, "results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
