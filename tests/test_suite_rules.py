"""The test suite's own rule: test modules share code only through ``tests/helpers/`` (never by
importing conftest.py or another test module). That nothing edits ``sys.path`` is
tests/test_imports.py's check, for benchmarks/ and tests/ alike."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_names(path: Path) -> set[str]:
    """Top-level names of every module that ``path`` imports (in functions too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names.add((node.module or "").partition(".")[0])
    return names


def test_no_test_module_imports_another():
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        name = str(path.relative_to(TESTS))
        imports = {m for m in imported_names(path) if m == "conftest" or m.startswith("test_")}
        if imports:
            offences.append(f"{name} imports {sorted(imports)}: move shared code to tests/helpers/")
    assert offences == []


def test_the_rule_catches_a_test_import(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text("from conftest import x\nfrom test_cli import y\n")
    assert imported_names(bad) >= {"conftest", "test_cli"}
    good = tmp_path / "test_good.py"
    good.write_text("from helpers.cli_args import fast_trainer_args\n")
    assert imported_names(good) == {"helpers"}
