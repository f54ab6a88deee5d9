"""Where the authors' ListOps model and this project's differ, on one fixed batch.

    python -m benchmarks.parity.diagnostics --authors /path/to/PSpikeSSMs
    python -m benchmarks.parity.diagnostics --authors PATH --steps 200 \\
        --ours-arg=--model.backbone.init_args.block.share_uniforms=false

For each model (the authors' from their checkout, this project's from ``configs/lra/listops.yaml``
plus any ``--ours-config`` overlays, both seeded with ``--seed``), on the first ``--batch``
validation sequences of the parity data (``parity.py``), in training mode with the spikes
seeded, at initialisation and again after ``--steps`` training steps of the parity schedule:

- ``<side>.<stage>.layer{i}/{site}.rate``: firing rate at every spike site over the valid
  positions (``rate_pad``: over the padded ones); ``layer{i}/u[_b].mean|std``: membrane
  potential (SSM output before the GELU) over the valid positions;
- ``<side>.<stage>.grad.layer{i}.{kind}``: gradient norm of the cross-entropy per layer and
  kind of parameter (C, B, A, P, dt, D, affines, mixer, norm; encoder, decoder);
- ``<side>.<stage>.group{g}.grad_norm`` with the group's ``lr`` (current) and ``weight_decay``;
- ``<side>.params_with_grad``: real-valued parameters that receive a gradient (complex ones
  count twice: they are stored as real pairs);
- ``<side>.optim.<parameter>=lr:...,wd:...``: the peak learning rate and weight decay every
  parameter receives from its optimiser group;
- ``diff.<stage>.<stat>``: authors minus ours, for every statistic both report.

``--same-weights`` copies the authors' initial parameters into ours (``parity_transfer.py``;
needs the same ``l_max`` on both sides, 2048 by default): the two models then differ only in
their code, so the init-stage statistics must agree up to the random spikes.

Skips with a message (exit 0) when ``--authors`` is not given or not a checkout.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.harness import emit
from benchmarks.parity.ablations import apply_ablations, authors_overrides, describe
from benchmarks.parity.probes import AuthorsProbe, OursProbe
from benchmarks.parity.run import authors_or_skip
from benchmarks.parity.sides import (
    ROOT,
    ParityData,
    Schedule,
    Side,
    authors_side,
    ours_side,
    train_step,
)
from benchmarks.parity.transfer import copy_weights

# (pattern on a block parameter's name inside its block, kind); first match wins. Branch 2's
# parameters get the suffix ``_b``. Names of both models, this project's before and after
# its block refactor (``ssm_b`` / ``branches.1``).
KINDS = [
    (r"kernel\.(C|c)$", "C"),
    (r"kernel\.(B|b)$", "B"),
    (r"kernel\.(P|p)$", "P"),
    (r"kernel\.(A_real|A_imag|log_w_real|w_imag|log_a_real|a_imag)$", "A"),
    (r"kernel\.(inv_dt|log_dt)$", "dt"),
    (r"(layer\.D|ssm(_b)?\.d)$", "D"),
    (r"(out_[ab]|output_affine\w*\.\w+)$", "out_affine"),
    (r"(inp2?_[ab]|affine\w*\.\w+|affines\.\d+\.\w+)$", "in_affine"),
    (r"(bidirectional_linear|mixer)\.", "mixer"),
    (r"norm\.", "norm"),
]
SECOND_BRANCH = r"(reverse_layer|inp2_|ssm_b\.|_b\.\w+$|branches\.[1-9]\.|affines\.[1-9]\.)"


def kind_of(name: str) -> str:
    """``layer{i}.{kind}`` for block parameters, ``encoder`` / ``decoder`` / the name else."""
    match = re.search(r"(?:layers|blocks)\.(\d+)\.(.*)$", name)
    if not match:
        return next((k for k in ("encoder", "decoder") if k in name), name)
    rest = match.group(2)
    kind = next((k for pattern, k in KINDS if re.search(pattern, rest)), rest)
    if kind not in ("mixer", "norm") and re.search(SECOND_BRANCH, rest):
        kind += "_b"
    return f"layer{match.group(1)}.{kind}"


def observe(side: Side, batch, seed: int, stage: str) -> dict[str, object]:
    """One seeded training-mode forward and backward on ``batch`` (no optimiser step)."""
    inputs, lengths, targets = batch
    backbone = side.model.backbone
    probe = side.extra.get("probe")  # an ablation's probe records already: keep it
    if probe is None:
        probe = AuthorsProbe(backbone) if side.name == "authors" else OursProbe(backbone)
    buffers = {name: b.clone() for name, b in side.model.named_buffers()}
    side.model.train()
    torch.manual_seed(seed)
    loss = F.cross_entropy(side.forward(inputs, lengths), targets)
    side.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if "probe" not in side.extra:
        probe.remove()
    loss = loss.detach()
    for name, b in side.model.named_buffers():  # the probe's batch leaves no trace in BN
        b.copy_(buffers[name])
    out: dict[str, object] = {"loss": float(loss)}
    out.update(probe.stats(lengths))
    squares: dict[str, float] = {}
    for name, p in side.model.named_parameters():
        if p.grad is not None:
            key = "grad." + kind_of(name)
            squares[key] = squares.get(key, 0.0) + float(p.grad.pow(2).sum())
    out.update({key: value**0.5 for key, value in sorted(squares.items())})
    for g, group in enumerate(side.optimizer.param_groups):
        grads = [p.grad.pow(2).sum() for p in group["params"] if p.grad is not None]
        out[f"group{g}.grad_norm"] = float(sum(grads) ** 0.5) if grads else 0.0
        out[f"group{g}.lr"] = group["lr"]
        out[f"group{g}.weight_decay"] = group["weight_decay"]
    side.optimizer.zero_grad(set_to_none=True)
    return {f"{side.name}.{stage}.{key}": value for key, value in out.items()}


def optimiser_table(side: Side) -> dict[str, object]:
    """Every parameter's peak lr and weight decay, and how many real values get a gradient."""
    names = {id(p): name for name, p in side.model.named_parameters()}
    table: dict[str, object] = {}
    for group in side.optimizer.param_groups:
        for p in group["params"]:
            lr = group.get("initial_lr", group["lr"])
            table[f"{side.name}.optim.{names[id(p)]}"] = f"lr:{lr:g},wd:{group['weight_decay']:g}"
    return table


def count_with_grad(side: Side, batch) -> int:
    inputs, lengths, targets = batch
    side.optimizer.zero_grad(set_to_none=True)
    F.cross_entropy(side.forward(inputs, lengths), targets).backward()
    count = sum(p.numel() for p in side.model.parameters() if p.grad is not None)
    side.optimizer.zero_grad(set_to_none=True)
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "parity-listops")
    parser.add_argument("--steps", type=int, default=100, help="training steps before stage 2")
    parser.add_argument("--batch", type=int, default=64, help="size of the fixed batch")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--authors-l-max", type=int, default=2048, help="their kernel length")
    parser.add_argument("--ours-config", action="append", default=[], help="overlay YAML")
    parser.add_argument("--ours-arg", action="append", default=[], help="CLI override")
    parser.add_argument(
        "--same-weights",
        action="store_true",
        help="copy the authors' initial weights into ours (parity_transfer.py): a gap is then "
        "a difference of computation, not of random draws",
    )
    parser.add_argument("--authors-ablation", action="append", default=[], help="parity.py's")
    parser.add_argument("--ours-ablation", action="append", default=[], help="parity.py's")
    args = parser.parse_args(argv)
    authors = authors_or_skip(args.authors)
    torch.set_num_threads(1)
    data = ParityData(args.data_dir)
    schedule = Schedule(steps=max(args.steps, 1))
    batch = data.collate(data.val, range(args.batch))
    emit(
        {
            "batch_size": args.batch,
            "batch_length": batch[0].shape[1],
            "batch_padding_fraction": 1 - float(batch[1].sum()) / batch[0].numel(),
        }
    )
    emit(describe(args.authors_ablation, args.ours_ablation))
    sides = [
        apply_ablations(
            authors_side(
                data,
                authors,
                args.seed,
                schedule,
                l_max=args.authors_l_max,
                **authors_overrides(args.authors_ablation),
            ),
            args.authors_ablation,
        ),
        apply_ablations(
            ours_side(args.data_dir, args.seed, schedule, args.ours_config, args.ours_arg),
            args.ours_ablation,
        ),
    ]
    if args.same_weights:
        n_layers = sides[1].model.backbone.settings["n_layers"]
        copy_weights(sides[0].model, sides[1].model.backbone, data.to_authors, n_layers)
    results: dict[str, dict[str, object]] = {}
    for side in sides:
        emit({f"{side.name}.params_with_grad": count_with_grad(side, batch)})
        emit(optimiser_table(side))
        results[side.name] = observe(side, batch, args.seed, "init")
        if args.steps > 0:
            for indices in data.plan(args.seed, args.steps, schedule.batch):
                train_step(side, data.collate(data.train, indices))
            results[side.name].update(observe(side, batch, args.seed, f"step{args.steps}"))
        emit(results[side.name])
    ours = {k.split(".", 1)[1]: v for k, v in results["ours"].items()}
    emit(
        {
            f"diff.{key.split('.', 1)[1]}": value - ours[key.split(".", 1)[1]]
            for key, value in results["authors"].items()
            if key.split(".", 1)[1] in ours and isinstance(value, float) and "group" not in key
        }
    )


if __name__ == "__main__":
    sys.exit(main())
