"""The test suite's own rules: test modules share code only through ``tests/helpers/`` (never by
importing conftest.py or another test module), and nothing under tests/ edits ``sys.path``."""

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


def edits_sys_path(path: Path) -> bool:
    """Whether ``path`` touches ``sys.path`` in code (mentions in strings do not count)."""
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
        for node in ast.walk(ast.parse(path.read_text()))
    )


#: The parity tests still put benchmarks/ on sys.path; the lean-structure branch turns benchmarks/
#: into packages and drops these edits: delete this entry when it is merged.
SYS_PATH_PENDING = {"benchmarks/test_parity_harness.py", "benchmarks/test_parity_pins.py"}


def test_no_test_module_imports_another_or_edits_sys_path():
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        name = str(path.relative_to(TESTS))
        imports = {m for m in imported_names(path) if m == "conftest" or m.startswith("test_")}
        if imports:
            offences.append(f"{name} imports {sorted(imports)}: move shared code to tests/helpers/")
        if edits_sys_path(path) and name not in SYS_PATH_PENDING:
            offences.append(f"{name} edits sys.path: use pytest's pythonpath or monkeypatch")
    assert offences == []


def test_the_rules_catch_a_test_import_and_a_sys_path_edit(tmp_path):
    bad = tmp_path / "test_bad.py"
    bad.write_text(
        "import sys\nfrom conftest import x\nfrom test_cli import y\nsys.path.insert(0, 'a')\n"
    )
    assert imported_names(bad) >= {"conftest", "test_cli"}
    assert edits_sys_path(bad)
    good = tmp_path / "test_good.py"
    good.write_text("from helpers.cli_args import fast_trainer_args\ntext = 'sys.path'\n")
    assert imported_names(good) == {"helpers"} and not edits_sys_path(good)
