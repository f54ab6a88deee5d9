"""Launching ATen ops per training step: the CPU-side count of what an eager GPU step launches.

    python -m benchmarks.speed.ops --authors .authors                # every task config + fast
    python -m benchmarks.speed.ops --authors .authors \
        --before benchmarks/results/before_0e545ea_ops_cpu.json     # beside an earlier count
    python -m benchmarks.speed.ops --config configs/lra/listops.yaml --by-op 20
    python -m benchmarks.speed.ops --device cuda --config configs/lra/listops.yaml  # on a GPU
    python -m benchmarks.speed.ops --gpu-path --config configs/lra/listops.yaml  # its path, here

An eager step of a small model on a GPU waits for kernel launches, not for arithmetic: the
number of ops it dispatches is what CUDA graphs and ``torch.compile`` hide when they work. A
``TorchDispatchMode`` (:class:`OpCounter`) sees every op below autograd, the backward's too;
the ops that only make a view or an alias (:data:`VIEW_OPS`) are not counted, every other op
is. A step is the config's model (its ``model:`` sections merged as the CLI merges them) on
synthetic full-length batches at batch 8 and length 512, cross-entropy, backward, and a
for-each AdamW update over the model's parameter groups (what a GPU runs with the fused update
off), counted on the second step (the first makes the optimiser's state). The count depends on
the code path, not on the batch or the length (except where a kernel's l_max sets how many
chunks the Cauchy sums take): on CPU the path the CPU takes, with ``--device cuda`` the GPU's
(a block's branches convolve as one there; ``--gpu-path`` takes that path on CPU). ``host
reads`` are the ``.item()`` of AdamW's step counters, which stay on the host: counted (as
issue 30 counts), but no GPU launch.
``--authors PATH`` adds the authors' ListOps model (their code, their optimiser groups).

Prints ``name=value`` lines (``<config>_forward``, ``_backward``, ``_optimizer``, ``_total``)
and writes the ``ops`` section of ``benchmarks/RESULTS.md`` (``--no-write``: only print).
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks.harness import command_line, emit, machine, machine_line, write_results
from benchmarks.speed.train import FAST, ROOT, build_module, synthetic_batch
from pspikessm.data.tokens import TokenDataModule
from pspikessm.models import convolution
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


def launches(func) -> bool:
    """Whether an op does work: every op but those making a view or an alias (in place too)."""
    return func.overloadpacket.__name__.rstrip("_") not in VIEW_OPS


class OpCounter(TorchDispatchMode):
    """The launching ops dispatched while active, by name (``ops``: ``aten.mul.Tensor`` → n),
    and the bytes they read and write (``bytes``: each tensor input and output once)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if launches(func):
            self.ops[str(func)] += 1
            for leaf in torch.utils._pytree.tree_leaves((args, kwargs, out)):
                if isinstance(leaf, torch.Tensor):
                    self.bytes += leaf.numel() * leaf.element_size()
        return out


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
    """What the config's data module would link into the model (the CLI's links): its number
    of classes and input channels (the module built from the config's ``init_args``; it reads
    no data until set up), tokens or real inputs, two documents or one."""
    data = yaml.safe_load(config.read_text()).get("data") or {}
    module_name, _, class_name = data["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    datamodule = cls(**(data.get("init_args") or {}))
    return {
        "num_classes": int(datamodule.num_classes),
        # the size changes no op count (and a token task's is read from its data)
        "vocab_size": 18 if isinstance(datamodule, TokenDataModule) else 0,
        "d_input": int(getattr(datamodule, "d_input", 1)),
        "dual_input": bool(getattr(datamodule, "dual_input", False)),
    }


def step_counts(
    configs: list[Path], batch: int, length: int, device: str = "cpu"
) -> dict[str, Counter[str]]:
    """Per phase, the ops of the second training step of the configs' model."""
    linked = linked_values(configs[0])
    torch.manual_seed(0)
    module = build_module(*configs, **linked).to(device).train()
    on = torch.device(device)
    if linked["dual_input"]:
        inputs = torch.stack([synthetic_batch(batch, length, 2, on, 18)[0] for _ in range(2)], 1)
        _, lengths, targets = synthetic_batch(batch, length, 2, on, 18)
        lengths = torch.stack([lengths, lengths], 1)
    else:
        inputs, lengths, targets = synthetic_batch(
            batch, length, linked["num_classes"], on, linked["vocab_size"]
        )
        if not linked["vocab_size"]:  # real inputs with the data's channels
            inputs = inputs.expand(-1, -1, linked["d_input"]).contiguous()
    hp = module.hparams
    groups = parameter_groups(module, hp.lr, hp.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, foreach=True)
    return two_steps(lambda: F.cross_entropy(module(inputs, lengths), targets), optimizer)


def two_steps(forward: Callable[[], torch.Tensor], optimizer) -> dict[str, Counter[str]]:
    count_phases(forward, optimizer)  # the first step makes the optimiser's state
    return count_phases(forward, optimizer)


def authors_counts(
    authors, batch: int, length: int, device: str = "cpu"
) -> dict[str, Counter[str]]:
    """The authors' ListOps model and optimiser groups (their code, as
    :func:`benchmarks.authors.import_authors` gives it)."""
    from benchmarks.authors import authors_optimizer, build_authors_model

    torch.manual_seed(0)
    model = build_authors_model(authors, 18, l_max=length).to(device).train()
    optimizer, _ = authors_optimizer(
        authors, model, lr=8e-4, weight_decay=0.01, warmup=12000, total=120000
    )
    for group in optimizer.param_groups:
        group["foreach"] = True
    inputs, lengths, targets = synthetic_batch(batch, length, 10, torch.device(device), 18)
    return two_steps(lambda: F.cross_entropy(model(inputs, lengths), targets), optimizer)


def summary(counts: dict[str, Counter[str]]) -> dict[str, int]:
    """Ops per phase, their total, and the host reads among them."""
    totals = {phase: sum(ops.values()) for phase, ops in counts.items()}
    host_reads = sum(ops["aten._local_scalar_dense.default"] for ops in counts.values())
    return {**totals, "total": sum(totals.values()), "host_reads": host_reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, action="append", help="task config (repeatable)")
    parser.add_argument("--fast", action="store_true", help="only with configs/model/fast.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=512)
    parser.add_argument("--authors", help="the authors' checkout: add their ListOps model")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: count the GPU path")
    parser.add_argument(
        "--gpu-path",
        action="store_true",
        help="on CPU, take the GPU's code path (a block's branches convolved as one)",
    )
    parser.add_argument("--by-op", type=int, default=0, help="print the N most frequent ops")
    parser.add_argument(
        "--before", type=Path, help="a results JSON of this script from an earlier revision"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.authors:  # a wrong path fails now, not after counting every config
        from benchmarks.authors import import_authors

        authors_code = import_authors(args.authors)
    if args.gpu_path:  # the one place the model's code path depends on the device
        convolution.joins_branches = lambda x: True
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
        counts = step_counts(stack, args.batch, args.length, args.device)
        rows[name] = summary(counts)
        results.update({f"{name}_{k}": v for k, v in rows[name].items()})
        emit({f"{name}_{k}": v for k, v in rows[name].items()})
        if args.by_op:
            both = sum(counts.values(), Counter())
            for op, n in both.most_common(args.by_op):
                print(f"  {n:5d} {op}")
    if args.authors:
        authors = authors_counts(authors_code, args.batch, args.length, args.device)
        rows["authors listops"] = summary(authors)
        results.update({f"authors_{k}": v for k, v in rows["authors listops"].items()})
        emit({f"authors_{k}": v for k, v in rows["authors listops"].items()})
    if args.no_write:
        return
    info = {**machine(), "device": args.device + ("_gpu_path" if args.gpu_path else "")}
    before = json.loads(args.before.read_text())["results"] if args.before else {}
    prefix = {"authors listops": "authors"}
    lines = [
        f"## Launching ops per training step (`{command_line()}`)",
        "",
        f"Batch {args.batch}, length {args.length}; ATen ops below autograd, views and aliases "
        "excluded (`benchmarks/speed/ops.py`), for-each AdamW; the second step of each model"
        + (", the GPU's code path (a block's branches convolved as one)." if args.gpu_path else ".")
        + (f" `before`: the same count of `{args.before.name}`." if before else ""),
        "",
        "| model | forward | backward | optimiser | total | of which host reads |"
        + (" before |" if before else ""),
        "|---|---|---|---|---|---|" + ("---|" if before else ""),
        *(
            f"| {name} | {r['forward']} | {r['backward']} | {r['optimizer']} | "
            f"**{r['total']}** | {r['host_reads']} |"
            + (f" {before.get(prefix.get(name, name) + '_total', '–')} |" if before else "")
            for name, r in rows.items()
        ),
        "",
        machine_line(info),
    ]
    write_results("ops", {"machine": info, "results": results}, "\n".join(lines))


if __name__ == "__main__":
    main()
