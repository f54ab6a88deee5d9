"""docs/reproduction.md against the configs: every "config key / value" cell of its tables is
what the resolved config says, and every parameter count is what the config's model has."""

from __future__ import annotations

import re

import pytest

from helpers.reproduction_tables import expectations, lookup, resolved, sections
from pspikessm.models import BlockSettings, PSpikeSSM

#: Section of the document → the config that is that official experiment.
TASKS = {
    "ListOps": "configs/lra/listops.yaml",
    "Text (IMDB)": "configs/lra/text.yaml",
    "Retrieval (AAN)": "configs/lra/retrieval.yaml",
    "Image (sequential CIFAR-10, grayscale)": "configs/lra/image.yaml",
    "Pathfinder": "configs/lra/pathfinder.yaml",
    "psMNIST": "configs/mnist/psmnist.yaml",
}
SHARED = "What every task shares (the block)"


def test_every_task_has_its_table():
    assert set(TASKS) | {SHARED, "Parameter counts"} <= set(sections())


@pytest.mark.parametrize("task", TASKS)
def test_table_matches_the_resolved_config(task, capsys):
    config = resolved(TASKS[task], capsys)
    rows = sections()[SHARED] + sections()[task]
    checked = 0
    for row in rows:
        for key, expected in expectations(row):
            assert lookup(config, key) == expected, (task, row[0], key)
            checked += 1
    assert checked >= 20, task


def count(config: dict, **data) -> int:
    init = dict(config["model"]["backbone"]["init_args"])
    block = BlockSettings(**init.pop("block"))
    keep = ("d_model", "n_layers")
    model = PSpikeSSM(block=block, **{k: init[k] for k in keep}, **data)
    return sum(p.numel() for p in model.parameters())


DATA = {
    "ListOps": {"num_classes": 10},
    "Text": {"num_classes": 2},
    "Retrieval": {"num_classes": 2, "dual_input": True},
    "Image": {"num_classes": 10, "d_input": 1},
    "Pathfinder": {"num_classes": 2, "d_input": 1},
    "psMNIST": {"num_classes": 10, "d_input": 1},
}


@pytest.mark.parametrize(
    "row",
    # Paper-size models: ListOps (the smallest) in the fast tier, the others in the slow one.
    [
        pytest.param(row, marks=[] if row[0] == "ListOps" else [pytest.mark.slow], id=row[0])
        for row in sections()["Parameter counts"]
    ],
)
def test_parameter_counts(row, capsys):
    task = row[0]
    config = resolved(next(v for k, v in TASKS.items() if k.startswith(task)), capsys)
    match = re.fullmatch(r"([\d,]+)(?: \+ (\d+) V)?(?: \(V = (\d+)\))?", row[1])
    assert match, row
    base, per_token, vocab = match.groups()
    base = int(base.replace(",", ""))
    if per_token:  # tokens: the embedding adds H per vocabulary entry
        for v in (1, 100):
            assert count(config, vocab_size=v, **DATA[task]) == base + int(per_token) * v
    else:
        assert count(config, vocab_size=int(vocab or 0), **DATA[task]) == base
