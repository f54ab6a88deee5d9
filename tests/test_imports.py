"""No import circle in the package: every import statement (in functions too) counts, except
those under ``if TYPE_CHECKING:`` (never run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except those inside ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if test is not None and "TYPE_CHECKING" in ast.unparse(test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports (``from a import b`` may name module a.b)."""
    names: set[str] = set()
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}".rstrip(".")
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names & known


def test_no_import_circle_in_the_package():
    paths = {module_name(p): p for p in SOURCE.rglob("*.py")}
    graph = {name: imported_modules(path, set(paths)) - {name} for name, path in paths.items()}
    circles: list[list[str]] = []

    def visit(name: str, chain: list[str], done: set[str]) -> None:
        for target in sorted(graph[name]):
            if target in chain:
                circles.append([*chain[chain.index(target) :], target])
            elif target not in done:
                done.add(target)
                visit(target, [*chain, target], done)

    for name in sorted(graph):
        visit(name, [name], {name})
    assert circles == [], [" -> ".join(circle) for circle in circles]


def test_the_check_finds_a_circle(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text("from pkg.a import f\n")
    monkeypatch.setattr(f"{__name__}.SOURCE", tmp_path)
    with pytest.raises(AssertionError, match="pkg.a -> pkg.b -> pkg.a"):
        test_no_import_circle_in_the_package()


#: What one reader can hold in one sitting: every file under src/ and every function in it.
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 60


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=lambda p: module_name(p))
def test_files_and_functions_are_short(path: Path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{path}: over {MAX_FILE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name}: {length} lines"
