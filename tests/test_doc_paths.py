"""Docs that do not rot: every repository path, ``python -m`` module, ``pspikessm`` command
and relative link named in the READMEs, CONTRIBUTING.md, docs/, benchmarks/RESULTS.md and the
configs' comments exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.doc_paths import (
    REPO,
    RETIRED,
    TRAINER_SUBCOMMANDS,
    documents,
    missing,
    references,
)
from pspikessm.cli import TOOLS

COMMANDS = {*TRAINER_SUBCOMMANDS, *TOOLS}


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_reference_in_the_docs_exists(path: Path):
    stale = missing(path, COMMANDS)
    assert not stale, f"{path.relative_to(REPO)} names what does not exist: {stale}"


def test_retired_paths_are_gone():
    """A retired path is one that recorded commands name after it was deleted."""
    assert not [path for path in RETIRED if (REPO / path).exists()]


def test_a_stale_reference_is_found(tmp_path: Path):
    """The extractor on made-up docs: each kind of reference, existing and stale."""
    (tmp_path / "docs").mkdir()
    doc = tmp_path / "docs" / "guide.md"
    doc.write_text(
        "Run `pspikessm fit --config configs/quickstart.yaml`, then `pspikessm frobnicate`.\n"
        "The tests in tests/test_gone.py and tests/cli/test_configs.py::test_configs_exist;\n"
        "every configs/{lra,mnist}/*.yaml, and configs/lra/<task>.yaml.\n"
        "```bash\npython -m benchmarks.speed.train --help\npython -m benchmarks.nope.run\n"
        "PYTHONPATH=examples/csv_sequences pspikessm fit --config examples/csv_sequences/config.yaml\n"
        "grep -rl pspikessm src\n```\n"
        "pspikessm is prose. See [the README](../README.md) and [gone](missing.md), or the authors'\n"
        "configs/experiment/lra/pSpikeSSM-listops.yaml; https://github.com/o/r/blob/main/src/x.py.\n"
    )
    (tmp_path / "README.md").write_text("")
    for existing in ("configs/quickstart.yaml", "tests/cli/test_configs.py"):
        (tmp_path / existing).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / existing).write_text("")
    for folder in ("lra", "mnist"):
        (tmp_path / "configs" / folder).mkdir()
        (tmp_path / "configs" / folder / "task.yaml").write_text("")
    (tmp_path / "examples" / "csv_sequences").mkdir(parents=True)
    (tmp_path / "examples" / "csv_sequences" / "config.yaml").write_text("")
    (tmp_path / "benchmarks" / "speed").mkdir(parents=True)
    (tmp_path / "benchmarks" / "speed" / "train.py").write_text("")

    found = set(references(doc))
    assert ("command", "fit") in found and ("module", "benchmarks.speed.train") in found
    assert ("command", "src") not in found and ("command", "is") not in found
    assert missing(doc, {"fit", "test"}, repo=tmp_path) == [
        "path tests/test_gone.py",
        "module benchmarks.nope.run",
        "command frobnicate",
        "link missing.md",
    ]
    # A glob that matches nothing and a placeholder in a missing folder are stale too.
    (tmp_path / "configs" / "mnist" / "task.yaml").unlink()
    (tmp_path / "configs" / "lra" / "task.yaml").rename(tmp_path / "configs" / "lra" / "t.yml")
    assert "path configs/{lra,mnist}/*.yaml" in missing(doc, {"fit"}, repo=tmp_path)
