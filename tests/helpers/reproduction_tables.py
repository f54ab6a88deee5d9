"""docs/reproduction.md's tables and the resolved configs they describe, for the tests that
compare them cell by cell."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
import yaml

from pspikessm.cli import cli_main
from pspikessm.models.kernels import KERNELS
from pspikessm.models.settings import resolve_class

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reproduction.md"


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
