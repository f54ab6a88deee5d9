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


# --- Every module is used: imported by the package or started from outside -----------------


def entry_points() -> set[str]:
    """The modules started from outside the package: pyproject's scripts, ``python -m
    pspikessm``, the CLI's tools (``cli.TOOLS``), the built-in neurons and kernels a config
    names (``NEURONS``, ``KERNELS``) and the module of every class a config names by
    ``class_path`` (each resolved as the CLI resolves it, by importing it)."""
    import importlib
    import re

    from pspikessm.cli import TOOLS
    from pspikessm.models.kernels import KERNELS
    from pspikessm.models.neurons import NEURONS

    pyproject = (ROOT / "pyproject.toml").read_text()
    scripts = pyproject.partition("[project.scripts]")[2].partition("\n[")[0]
    found = {target.partition(":")[0] for target in re.findall(r'=\s*"([\w.:]+)"', scripts)}
    found |= {"pspikessm.__main__", *TOOLS.values()}
    found |= {path.rpartition(".")[0] for path in [*NEURONS.values(), *KERNELS.values()]}
    for config in (ROOT / "configs").rglob("*.yaml"):
        for path in re.findall(r"class_path:\s*(pspikessm\.[\w.]+)", config.read_text()):
            module, _, name = path.rpartition(".")
            found.add(getattr(importlib.import_module(module), name).__module__)
    return found


def unreachable_modules(paths: dict[str, Path], roots: set[str]) -> list[str]:
    """The modules of ``paths`` (name → file) that no import reaches from ``roots``; importing
    ``a.b.c`` runs ``a`` and ``a.b`` too."""
    reached: set[str] = set()
    todo = [root for root in roots if root in paths]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        parents = {name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)}
        todo += [*imported_modules(paths[name], set(paths)), *(parents & set(paths))]
    return sorted(set(paths) - reached)


def test_every_module_is_imported_by_the_package_or_an_entry_point():
    """No module under src/ sits unused: each is imported (at run time, not only for type
    checks) from ``pspikessm`` or from an entry point (:func:`entry_points`)."""
    paths = {name: path for name, path in all_modules().items() if name.startswith("pspikessm")}
    roots = {"pspikessm", *entry_points()}
    assert {"pspikessm.__main__", "pspikessm.cli.report"} <= roots  # the console script, a tool
    assert unreachable_modules(paths, roots) == []


def test_the_reachability_check_finds_an_unused_module(tmp_path, monkeypatch):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from pkg.sub.used import f\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "used.py").write_text("def f():\n    from pkg import helper\n")
    (package / "helper.py").write_text("")
    (package / "orphan.py").write_text("import pkg.helper\n")
    monkeypatch.setattr(f"{__name__}.SOURCE", tmp_path)
    paths = {module_name(p): p for p in tmp_path.rglob("*.py")}
    assert unreachable_modules(paths, {"pkg"}) == ["pkg.orphan"]


# --- models/ stands alone: no Lightning, nothing of the package outside models/ -----------


def test_models_import_nothing_of_the_package_outside_models():
    """A model is built, read and reused without the training code (the optimiser tags live in
    ``models/optim_tags.py``; ``pspikessm.optim`` imports them from there)."""
    paths = all_modules()
    outside = {
        name: sorted(
            target
            for target in imported_modules(path, set(paths))
            if not target.startswith("pspikessm.models")
        )
        for name, path in paths.items()
        if name.startswith("pspikessm.models")
    }
    assert len(outside) > 15 and "pspikessm.models.block" in outside  # the check saw models/
    assert {name: targets for name, targets in outside.items() if targets} == {}


def test_importing_the_models_loads_no_lightning():
    import os
    import subprocess
    import sys

    check = (
        "import sys, pspikessm.models; "
        "assert not any(m.startswith('lightning') for m in sys.modules), "
        "sorted(m for m in sys.modules if m.startswith('lightning'))[:5]"
    )
    path = os.pathsep.join(filter(None, [str(SOURCE), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}  # this checkout's package, not an installed one
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
