"""No import circle in the package or the benchmarks: every import statement (in functions too)
counts, except those under ``if TYPE_CHECKING:`` (never run). Neither benchmarks nor tests edit
``sys.path``; files and functions stay short."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"
#: Run as ``python -m benchmarks....`` from the repository root.
BENCHMARKS = ROOT / "benchmarks"


def module_name(path: Path) -> str:
    base = SOURCE if path.is_relative_to(SOURCE) else BENCHMARKS.parent
    parts = path.relative_to(base).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Module name → file, for the package under src/ and the benchmarks package."""
    return {module_name(p): p for p in [*SOURCE.rglob("*.py"), *BENCHMARKS.rglob("*.py")]}


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


def import_circles(paths: dict[str, Path]) -> list[str]:
    """Each import circle among the modules ``paths`` (name → file), as ``a -> b -> a``."""
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
    return [" -> ".join(circle) for circle in circles]


def test_no_import_circle_in_the_package():
    paths = all_modules()
    assert "benchmarks.parity.run" in paths and "pspikessm.cli.train" in paths  # both were read
    assert import_circles(paths) == []


def test_the_check_finds_a_circle(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg import b\n")
    (package / "b.py").write_text("from pkg.a import f\n")
    monkeypatch.setattr(f"{__name__}.SOURCE", tmp_path)
    circles = import_circles({module_name(p): p for p in tmp_path.rglob("*.py")})
    assert circles == ["pkg.a -> pkg.b -> pkg.a", "pkg.b -> pkg.a -> pkg.b"]  # from each end


def sys_path_edits(path: Path) -> list[str]:
    """``file:line`` of each change to ``sys.path`` in ``path`` (a call on it, an assignment)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
        elif isinstance(node, ast.Assign | ast.AugAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        if target is not None and ast.unparse(target) in ("sys.path", "os.sys.path"):
            found.append((node.lineno, f"{path.relative_to(ROOT)}:{node.lineno}"))
    return [where for _, where in sorted(found)]


def test_benchmarks_and_tests_do_not_edit_sys_path():
    """They import the package as installed (or from src/ by pytest's ``pythonpath``) and the
    benchmarks as a package run from the repository root."""
    files = [*BENCHMARKS.rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
    assert len(files) > 20
    assert [edit for path in files for edit in sys_path_edits(path)] == []


def test_the_sys_path_check_finds_an_edit(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    script = tmp_path / "script.py"
    script.write_text("import sys\nsys.path.insert(0, 'src')\nsys.path += ['x']\n")
    assert sys_path_edits(script) == ["script.py:2", "script.py:3"]


def test_data_imports_nothing_above_it():
    """Data modules and their shared components stand alone: no model, no CLI, no callbacks,
    so a task can be read, tested and reused without the training code. The one exception is
    :mod:`pspikessm.files` (atomic writes), a leaf that imports nothing of the package."""
    paths = all_modules()
    above = {
        name: sorted(
            target
            for target in imported_modules(path, set(paths))
            if target not in ("pspikessm.data", "pspikessm.files")
            and not target.startswith("pspikessm.data.")
        )
        for name, path in paths.items()
        if name == "pspikessm.data" or name.startswith("pspikessm.data.")
    }
    assert len(above) > 20 and "pspikessm.data.tasks.listops" in above  # the check saw data/
    assert {name: targets for name, targets in above.items() if targets} == {}
    assert imported_modules(paths["pspikessm.files"], set(paths)) == set()  # a leaf


#: What one reader can hold in one sitting: every function under src/, and a file that keeps
#: one concept together (a task, a kernel, the block) rather than splitting it finer.
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 60


@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.py")), ids=lambda p: module_name(p))
def test_files_and_functions_are_short(path: Path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_FILE_LINES, f"{path}: over {MAX_FILE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name}: {length} lines"


#: Lightning's private state the package touches (attributes of its Trainer and modules).
LIGHTNING_PRIVATE = {
    "_trainer",
    "fit_loop",
    "_log_hyperparams",
    "batch_progress",
    "_checkpoint_connector",
    "_logger_connector",
    "_accelerator_connector",
    "_results",
}


def private_lightning_uses(path: Path) -> list[str]:
    """``file:line attribute`` of each use of :data:`LIGHTNING_PRIVATE` in ``path``'s code."""
    return [
        f"{path.relative_to(SOURCE)}:{node.lineno} {node.attr}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in LIGHTNING_PRIVATE
    ]


def test_lightning_internals_only_in_the_runtime_package():
    """A Lightning upgrade has one package to check: pspikessm.runtime (each use there names
    the Lightning version it was checked with)."""
    runtime = SOURCE / "pspikessm" / "runtime"
    outside = [
        use
        for path in SOURCE.rglob("*.py")
        if runtime not in path.parents
        for use in private_lightning_uses(path)
    ]
    assert outside == []
    inside = [use for path in runtime.rglob("*.py") for use in private_lightning_uses(path)]
    assert any("_log_hyperparams" in use for use in inside)  # the check sees real uses
