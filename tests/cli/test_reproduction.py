"""docs/reproduction.md against the configs: every "config key / value" cell of its tables is
what the resolved config says, and every parameter count is what the config's model has."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from pspikessm.cli import cli_main
from pspikessm.models import BlockSettings, PSpikeSSM
from pspikessm.models.kernels import KERNELS
from pspikessm.models.settings import resolve_class

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reproduction.md"
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


def sections() -> dict[str, list[list[str]]]:
    """Section title → the rows (lists of cells) of its table."""
    found: dict[str, list[list[str]]] = {}
    title = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
        elif line.startswith("|") and not line.startswith("|---") and title:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            found.setdefault(title, []).append(cells)
    return {name: rows[1:] for name, rows in found.items()}  # drop the header row


def resolved(config: str, capsys) -> dict:
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(ROOT / config), "--print_config"])
    return yaml.safe_load(capsys.readouterr().out)


def lookup(config: dict, key: str):
    """The value of ``key`` in ``config`` (of a kernel or neuron: its name); a kernel option the config leaves out is the value
    the kernel class uses: its default."""
    key = re.sub(r"^block\.", "model.backbone.init_args.block.", key)
    *path, last = key.split(".")
    if path[-2:] == ["kernel", "init_args"]:  # the kernel: a name, or {name, init_args}
        kernel = config["model"]["backbone"]["init_args"]["block"]["kernel"]
        name, options = (kernel, {}) if isinstance(kernel, str) else (kernel["name"], kernel)
        if last in (options.get("init_args") or {}):
            return options["init_args"][last]
        cls = resolve_class(name, KERNELS, "block.kernel")
        return inspect.signature(cls).parameters[last].default
    value = config
    for part in path:
        value = value[part]
    if last in ("kernel", "neuron") and isinstance(value[last], dict):  # {name, init_args}
        return value[last]["name"]
    return value[last]


def expectations(row: list[str]) -> list[tuple[str, object]]:
    """(config key, expected value) pairs of a table row; none for rows without keys."""
    keys = re.findall(r"`([^`]+)`", row[3])
    value = row[4]
    if not keys or row[3].startswith("(") or value.startswith("see "):
        return []
    value = re.sub(r"\s*\(.*\)$", "", value)  # a trailing comment
    parts = [value] if len(keys) == 1 else [v.strip() for v in value.split(",")]
    assert len(parts) == len(keys), row
    return [(k, yaml.safe_load(v)) for k, v in zip(keys, parts, strict=True)]


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
