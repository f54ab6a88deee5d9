"""What the docs name in this repository (paths, ``python -m`` modules, ``pspikessm`` commands,
Markdown links) and which of those do not exist: the doc-path test's extractor."""

from __future__ import annotations

import importlib.util
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: The repository's top-level folders: a word starting with one of these and a slash is a path.
TOP_FOLDERS = ("src", "tests", "configs", "benchmarks", "docs", "scripts", "examples")
TOP_FOLDERS += ("notebooks", "docker", "pspikessm")  # pspikessm/...: under src/
#: Paths of other repositories that the docs cite by their own layout: the authors' code
#: (NeuroCompLab-psu/PSpikeSSMs), whose Hydra configs and modules the reproduction notes name.
OTHER_REPOSITORIES = (
    "configs/config.yaml",
    "configs/dataset/",
    "configs/experiment/",
    "configs/loader/",
    "configs/model/base.yaml",
    "configs/model/layer/",
    "configs/model/pSpikeSSM.yaml",
    "configs/pipeline/",
    "src/dataloaders/",
    "src/models/sequence/",
)
#: Deleted files that recorded commands still name (a record says what ran): path → why.
RETIRED = {
    "configs/model/spike_training.yaml": "the learning benchmark's candidate preset, deleted "
    "after its measurement (benchmarks/RESULTS.md, 'Learning speed'; docs/ablations.md)",
}
#: ``pspikessm`` subcommands besides the tools (``pspikessm.cli.TOOLS``).
TRAINER_SUBCOMMANDS = ("fit", "validate", "test", "predict")

_PATH = re.compile(
    r"(?<![\w./~$-])(?:" + "|".join(TOP_FOLDERS) + r")/(?:[\w./*<>$-]|\{[\w.,/*-]*\})*"
)
_MODULE = re.compile(r"\bpython3? -m ([\w.]+)")
# A command word: at the start of a code line or span, after a shell operator or after
# environment assignments (``PYTHONPATH=... pspikessm fit``).
_COMMAND = re.compile(
    r"(?:^[ \t]*|[;&|(][ \t]*)(?:\w+=\S*[ \t]+)*pspikessm[ \t]+([\w-]+)", re.MULTILINE
)
_LINK = re.compile(r"\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_SPAN = re.compile(r"`([^`\n]+)`")


def documents() -> list[Path]:
    """The files whose references are checked: the READMEs, CONTRIBUTING.md, docs/, the
    benchmark record and every config (its comment lines)."""
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "examples").glob("*/README.md")),
        REPO / "benchmarks" / "RESULTS.md",
        *sorted((REPO / "configs").rglob("*.yaml")),
        *sorted((REPO / "examples").glob("*/config.yaml")),
    ]


def prose_and_code(path: Path) -> tuple[str, str]:
    """The text of ``path`` to search for paths, and its code (fenced blocks and inline code
    of Markdown; a YAML file's comment lines) to search for commands."""
    text = path.read_text()
    if path.suffix == ".yaml":
        comments = "\n".join(
            line.split("#", 1)[1] for line in text.splitlines() if line.lstrip().startswith("#")
        )
        return comments, comments
    blocks = _FENCE.findall(text)
    spans = _SPAN.findall(_FENCE.sub("", text))
    return text, "\n".join([*blocks, *spans])


def expand(pattern: str) -> list[str]:
    """``a/{b,c}/d`` → ``a/b/d``, ``a/c/d``."""
    parts = re.split(r"\{([^}]*)\}", pattern)
    choices = [part.split(",") if i % 2 else [part] for i, part in enumerate(parts)]
    return ["".join(combination) for combination in itertools.product(*choices)]


def path_exists(reference: str, repo: Path = REPO) -> bool:
    """Whether a repository path (a glob, ``{a,b}`` choices or a ``<placeholder>`` allowed)
    names something in ``repo``; a placeholder checks the folder before it."""
    if reference.startswith("pspikessm/"):
        reference = "src/" + reference
    for candidate in expand(reference):
        if re.search(r"[<$]", candidate):
            folder = re.split(r"[<$]", candidate)[0].rsplit("/", 1)[0]
            if not (repo / folder).is_dir():
                return False
        elif "*" in candidate:
            if not any(repo.glob(candidate)):
                return False
        elif not (repo / candidate).exists():
            return False
    return True


def module_exists(name: str, repo: Path = REPO) -> bool:
    """Whether ``python -m name`` finds a module: this repository's (benchmarks, pspikessm,
    tests) by its file, any other by the installed packages."""
    top, *rest = name.split(".")
    folders = {"benchmarks": repo / "benchmarks", "tests": repo / "tests"}
    folders["pspikessm"] = repo / "src" / "pspikessm"
    if top not in folders:
        return importlib.util.find_spec(top) is not None
    base = folders[top].joinpath(*rest)
    return base.with_suffix(".py").is_file() or (base / "__main__.py").is_file()


def references(path: Path) -> Iterator[tuple[str, str]]:
    """``(kind, reference)`` for each path, module, command and relative link in ``path``."""
    prose, code = prose_and_code(path)
    for match in _PATH.finditer(prose):
        yield "path", match.group(0).rstrip(".,:;")
    for match in _MODULE.finditer(prose):
        yield "module", match.group(1).rstrip(".")
    for match in _COMMAND.finditer(code):
        yield "command", match.group(1)
    if path.suffix == ".md":
        for match in _LINK.finditer(prose):
            target = match.group(1).split("#")[0]
            if target and not re.match(r"[a-z]+:", target):
                yield "link", target


def missing(path: Path, commands: set[str], repo: Path = REPO) -> list[str]:
    """The references in ``path`` to what does not exist, as ``kind reference`` strings."""
    stale = []
    for kind, reference in references(path):
        if kind == "path":
            foreign = reference.startswith(OTHER_REPOSITORIES) or reference in RETIRED
            ok = foreign or path_exists(reference, repo)
        elif kind == "module":
            ok = module_exists(reference, repo)
        elif kind == "command":
            ok = reference in commands or reference.startswith("-")
        else:
            ok = (path.parent / reference).exists()
        if not ok:
            stale.append(f"{kind} {reference}")
    return stale
