"""Each task config's backbone against the authors' network for that experiment, by the
parameters that receive a gradient.

    python -m benchmarks.speed.authors_parameters --authors /path/to/PSpikeSSMs
    python -m benchmarks.speed.authors_parameters --authors PATH --tasks listops image

The authors' side is their ``SequenceModel`` (a checkout of NeuroCompLab-psu/PSpikeSSMs, built
by ``benchmarks/authors.py``) with the settings of their
``configs/experiment/lra/pSpikeSSM-<task>.yaml`` written out below; this project's side is the
config's blocks and final norm. Both run one forward and backward on random inputs, and only
parameters with a gradient count: their block also builds layers its forward never uses
(``bidirectional_linear1/2``, the S4Block's ``output_linear``). Encoder and decoder are left
out: they are one ``Linear``/``Embedding`` each on both sides and depend on the data.
Prints one ``<task>_authors=``, ``<task>_ours=`` and ``<task>_equal=`` line per task; exits 1
when a count differs, 0 with a message when no checkout is given.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

from benchmarks.authors import BACKBONE, LAYER, MODEL_FILE, import_authors
from benchmarks.harness import emit
from benchmarks.speed.train import ROOT, build_module

SSM_LR = {"dt": 0.001, "A": 0.001, "B": 0.001}
#: task → (config, what the data links, their `model.layer` keys, their `model` keys), from
#: configs/experiment/lra/pSpikeSSM-<listops|imdb|aan|cifar|pathfinder|mnist>.yaml.
TASKS = {
    "listops": (
        "lra/listops.yaml",
        {"vocab_size": 18, "num_classes": 10},
        {"d_state": 16, "n_ssm": 1, "l_max": 2048},
        {"d_model": 128, "n_layers": 4, "prenorm": False, "norm": "batch", "dropout": 0.0},
    ),
    "text": (
        "lra/text.yaml",
        {"vocab_size": 100, "num_classes": 2},
        {"d_state": 16, "n_ssm": 1, "l_max": 4096},
        {"d_model": 128, "n_layers": 4, "prenorm": True, "norm": "batch", "dropout": 0.05},
    ),
    "retrieval": (
        "lra/retrieval.yaml",
        {"vocab_size": 100, "num_classes": 2},
        {"d_state": 24, "n_ssm": 1, "l_max": 4000},
        {"d_model": 200, "n_layers": 4, "prenorm": True, "norm": "batch", "dropout": 0.0},
    ),
    "image": (
        "lra/image.yaml",
        {"vocab_size": 0, "num_classes": 10, "d_input": 1},
        {"d_state": 64, "n_ssm": 1, "l_max": 1024, "lr": SSM_LR},
        {"d_model": 512, "n_layers": 6, "prenorm": False, "norm": "layer", "dropout": 0.1},
    ),
    "pathfinder": (
        "lra/pathfinder.yaml",
        {"vocab_size": 0, "num_classes": 2, "d_input": 1},
        {"d_state": 64, "n_ssm": None, "l_max": 1024, "lr": SSM_LR},
        {"d_model": 256, "n_layers": 6, "prenorm": True, "norm": "batch", "dropout": 0.1},
    ),
    "psmnist": (
        "mnist/psmnist.yaml",
        {"vocab_size": 0, "num_classes": 10, "d_input": 1},
        {"d_state": 64, "n_ssm": 1, "l_max": 784},
        {
            "d_model": 400,
            "n_layers": 2,
            "prenorm": True,
            "norm": "batch",
            "dropout": 0.1,
            "bidirectional": False,  # one branch
            "residual": None,
        },
    ),
}
LENGTH = 64  # any length ≤ every l_max: the counts do not depend on it


def with_gradient(parameters) -> int:
    return sum(p.numel() for p in parameters if p.grad is not None)


def authors_count(authors, layer: dict, backbone: dict) -> int:
    torch.manual_seed(0)
    settings = {**BACKBONE, **backbone}
    model = authors.SequenceModel(layer=copy.deepcopy({**LAYER, **layer}), **settings).train()
    x = torch.randn(2, LENGTH, settings["d_model"])
    y, _ = model(x, lengths=torch.tensor([LENGTH, LENGTH - 5]), state=None)
    y.sum().backward()
    return with_gradient(model.parameters())


def our_count(config: str, linked: dict) -> int:
    torch.manual_seed(0)
    backbone = build_module(ROOT / "configs" / config, **linked).train().backbone
    x = torch.randn(2, backbone.blocks[0].branches[0].ssm.d.numel(), LENGTH)  # (B H L)
    for block in backbone.blocks:
        x = block(x, torch.ones(2, 1, LENGTH))
    backbone.final_norm(x).sum().backward()
    return with_gradient(
        p for name, p in backbone.named_parameters() if name.startswith(("blocks.", "final_norm."))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--authors", type=Path, help="checkout of NeuroCompLab-psu/PSpikeSSMs")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    args = parser.parse_args()
    if args.authors is None or not (args.authors / MODEL_FILE).is_file():
        where = "no --authors given" if args.authors is None else f"{args.authors} is no checkout"
        print(f"skipped: {where}; pass --authors PATH, a checkout of NeuroCompLab-psu/PSpikeSSMs")
        return
    authors = import_authors(args.authors)
    differ = []
    for task in args.tasks:
        config, linked, layer, backbone = TASKS[task]
        theirs, ours = authors_count(authors, layer, backbone), our_count(config, linked)
        emit({f"{task}_authors": theirs, f"{task}_ours": ours, f"{task}_equal": theirs == ours})
        if theirs != ours:
            differ.append(task)
    if differ:
        sys.exit(f"backbone parameter counts differ for {differ}")


if __name__ == "__main__":
    main()
