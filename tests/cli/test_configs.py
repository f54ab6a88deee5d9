"""Every YAML under configs/: a header that says what it is, a complete --print_config, and
a model and trainer that instantiate.

The rule (CONTRIBUTING.md): a config starts with a comment block whose first line says what
it trains (or, for an overlay, what it changes) and which contains the command that uses it
(``--config configs/<its path>``). A full config (with ``model`` and ``data``) also says which
published number it reproduces or compares against: a ``Reproduces`` or ``Compare against:``
line. An overlay (a partial config) is checked on top of ``configs/quickstart.yaml``.
"""

from __future__ import annotations

import re
from pathlib import Path

import lightning as L
import pytest
import yaml

from helpers.cli_args import tiny_model_args
from pspikessm.cli import cli_main

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").rglob("*.yaml"))
BASE = REPO / "configs" / "quickstart.yaml"
#: Run anywhere: what a config says about devices is tested where those devices exist.
CPU_ARGS = [
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.num_nodes=1",
    "--trainer.strategy=auto",
    "--trainer.precision=32-true",
]


def config_id(path: Path) -> str:
    return str(path.relative_to(REPO))


#: A CLI parse costs about a second: the fast tier parses the quickstart, one task config, one
#: model overlay and one trainer preset; the slow tier every config.
FAST_CONFIGS = {
    "configs/quickstart.yaml",
    "configs/lra/listops.yaml",
    "configs/model/lif_ssm.yaml",
    "configs/trainer/ddp.yaml",
}
TIERED_CONFIGS = [
    pytest.param(
        path,
        marks=[] if config_id(path) in FAST_CONFIGS else [pytest.mark.slow],
        id=config_id(path),
    )
    for path in CONFIGS
]


def header(path: Path) -> list[str]:
    """The leading comment lines of ``path``, without the ``#``."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return lines


def is_full(path: Path) -> bool:
    content = yaml.safe_load(path.read_text()) or {}
    return "model" in content and "data" in content


def config_args(path: Path) -> list[str]:
    """``--config`` arguments that make ``path`` a complete configuration."""
    return (
        ["--config", str(path)] if is_full(path) else ["--config", str(BASE), "--config", str(path)]
    )


class StubData(L.LightningDataModule):
    """Stands in for a task's data module, whose own tests use tiny real files: protocol
    values such as ListOps's vocabulary size come from the data files."""

    num_classes = 3

    def __init__(self, **kwargs) -> None:
        super().__init__()


def test_configs_exist():
    assert BASE in CONFIGS and len(CONFIGS) >= 2


@pytest.mark.parametrize("path", CONFIGS, ids=config_id)
def test_config_header_says_what_it_is(path: Path):
    lines = header(path)
    assert lines and len(lines[0].split()) >= 3, f"{path}: first line must say what it trains"
    text = "\n".join(lines)
    assert f"--config {config_id(path)}" in text, (
        f"{path}: the header must show the command that uses it (--config {config_id(path)})"
    )
    if is_full(path):
        assert re.search(r"Reproduces|Compare against:", text), (
            f"{path}: the header must say which published number it reproduces or compares "
            "against ('Reproduces ...' or 'Compare against: ...')"
        )


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    """``{"a.b.0.c": leaf}`` for nested dicts and lists."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(i), v) for i, v in enumerate(value))
    else:
        return {prefix: value}
    flat: dict[str, object] = {}
    for key, child in items:
        flat.update(flatten(child, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def same(written: object, resolved: object) -> bool:
    """Equal after the parser's normalisation (``1e-3`` strings, short class names)."""
    if isinstance(written, str) and isinstance(resolved, float):
        return float(written) == resolved
    if isinstance(written, str) and isinstance(resolved, str) and "." in resolved:
        return resolved == written or resolved.rsplit(".", 1)[-1] == written.rsplit(".", 1)[-1]
    return written == resolved


@pytest.mark.parametrize("path", TIERED_CONFIGS)
def test_print_config_shows_the_full_resolved_configuration(path: Path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", *config_args(path), "--print_config"])
    assert exit_info.value.code in (None, 0)
    resolved = flatten(yaml.safe_load(capsys.readouterr().out))
    written = flatten(yaml.safe_load(path.read_text()))
    for key, value in written.items():
        assert key in resolved and same(value, resolved[key]), (key, value, resolved.get(key))
    # Defaults that no config writes are resolved too: the whole run is in the printout.
    for key in ("trainer.precision", "model.backbone.init_args.block.kernel", "checkpoint.monitor"):
        assert any(k == key or k.startswith(f"{key}.") for k in resolved), (
            key
        )  # kernel: {name, ...}
    assert "optimizer" not in resolved  # one optimiser mechanism (configure_optimizers)


@pytest.mark.parametrize("path", TIERED_CONFIGS)
def test_model_and_trainer_instantiate(path: Path, tmp_path: Path):
    content = yaml.safe_load(path.read_text()) or {}
    backbone = content.get("model", {}).get("backbone", {}).get("init_args", {})
    tiny = [a for a in tiny_model_args(d_state=4) if a.split("=")[0].rsplit(".", 1)[1] in backbone]
    cli = cli_main(
        [
            *config_args(path),
            f"--data={__name__}.StubData",
            *tiny,
            *CPU_ARGS,
            f"--trainer.default_root_dir={tmp_path}",
        ],
        run=False,
    )
    assert cli.model.hparams.num_classes == StubData.num_classes
    assert cli.trainer is not None
