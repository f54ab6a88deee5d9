"""ListOps generator following the Long Range Arena grammar, writing the LRA TSV layout.

Grammar (LRA's ``listops.py``): a node at depth ``d < max_depth`` becomes an operator with
probability ``operator_prob`` (LRA's ``VALUE_P = 0.25``; LRA draws a leaf when
``random() > VALUE_P``), otherwise a digit 0-9; nodes at ``max_depth`` are digits. An operator
takes 2..``max_args`` arguments and is one of MIN, MAX, MED (integer median: ``int`` of the
median, which averages the two middle values of an even count) and SM (sum mod 10). A tree
is kept when its length (digits, plus 2 per operator for ``[OP`` and ``]``) lies strictly
between ``min_length`` and ``max_length``. Rows are written as LRA writes them: nested
parentheses around every application, a ``Source\\tTarget`` header.

Command::

    pspikessm make-listops --out data/listops-small --num-train 20000 --max-depth 3 \\
        --min-length 4 --max-length 100 --seed 0
"""

from __future__ import annotations

import argparse
import random
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
HEADER = "Source\tTarget"

Tree = int | tuple


@dataclass
class ListOpsGeneratorConfig:
    """Settings of a generated ListOps set (defaults: the LRA release, smaller counts)."""

    num_train: int = 96000  # rows in basic_train.tsv
    num_val: int = 2000  # rows in basic_val.tsv
    num_test: int = 2000  # rows in basic_test.tsv
    min_length: int = 500  # keep trees strictly longer than this (tokens)
    max_length: int = 2000  # keep trees strictly shorter than this (tokens)
    max_depth: int = 10  # nodes at this depth are digits
    max_args: int = 10  # arguments per operator: 2..max_args
    operator_prob: float = 0.25  # chance that a node above max_depth is an operator
    seed: int = 0  # the whole set is a function of the settings


def generate_tree(
    rng: random.Random, config: ListOpsGeneratorConfig, depth: int = 1
) -> tuple[Tree, int]:
    """One random expression tree and its length in tokens (LRA's ``generate_tree``)."""
    is_operator = depth < config.max_depth and rng.random() <= config.operator_prob
    if not is_operator:
        return rng.randrange(10), 1
    length = 2
    arguments = []
    for _ in range(rng.randint(2, config.max_args)):
        subtree, sub_length = generate_tree(rng, config, depth + 1)
        arguments.append(subtree)
        length += sub_length
    tree: Tree = (rng.choice(OPERATORS), arguments[0])
    for argument in arguments[1:]:
        tree = (tree, argument)
    return (tree, END), length


def to_string(tree: Tree) -> str:
    """LRA's string form: ``( ( [MAX 2 ) 9 ) ] )``-style nesting of every application."""
    if isinstance(tree, str):
        return tree
    if isinstance(tree, int):
        return str(tree)
    return f"( {to_string(tree[0])} {to_string(tree[1])} )"


def apply_operator(operator: str, arguments: list[int]) -> int:
    if operator == "[MIN":
        return min(arguments)
    if operator == "[MAX":
        return max(arguments)
    if operator == "[MED":
        return int(statistics.median(arguments))
    if operator == "[SM":
        return sum(arguments) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}")


def evaluate(tree: Tree) -> int:
    """The value of a generated tree (walks the nested pairs built by :func:`generate_tree`)."""
    if isinstance(tree, int):
        return tree
    body, _end = tree  # (applications, "]")
    arguments: list[int] = []
    while isinstance(body[0], tuple):
        body, last = body
        arguments.append(evaluate(last))
    operator, first = body
    arguments.append(evaluate(first))
    return apply_operator(operator, arguments[::-1])


def generate_rows(
    config: ListOpsGeneratorConfig, count: int, rng: random.Random, seen: set[str]
) -> list[tuple[str, int]]:
    """``count`` distinct rows ``(source, target)`` not already in ``seen``."""
    rows: list[tuple[str, int]] = []
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > 1000 * count + 100000:
            raise RuntimeError(
                f"could only generate {len(rows)} of {count} distinct ListOps rows with {config}; "
                "widen the length range or raise max_depth / max_args"
            )
        tree, length = generate_tree(rng, config)
        if not config.min_length < length < config.max_length:
            continue
        source = to_string(tree)
        if source in seen:
            continue
        seen.add(source)
        rows.append((source, evaluate(tree)))
    return rows


def write_listops(out_dir: str | Path, config: ListOpsGeneratorConfig) -> list[Path]:
    """Write ``basic_{train,val,test}.tsv`` under ``out_dir``; the splits share no row."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    seen: set[str] = set()
    paths = []
    for split, count in (
        ("train", config.num_train),
        ("val", config.num_val),
        ("test", config.num_test),
    ):
        rows = generate_rows(config, count, rng, seen)
        path = out / f"basic_{split}.tsv"
        tmp = path.with_suffix(".tsv.tmp")
        with tmp.open("w") as handle:
            handle.write(HEADER + "\n")
            handle.writelines(f"{source}\t{target}\n" for source, target in rows)
        tmp.replace(path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    defaults = ListOpsGeneratorConfig()
    parser = argparse.ArgumentParser(
        prog="pspikessm make-listops",
        description="Generate a ListOps set in the LRA layout (basic_{train,val,test}.tsv).",
    )
    parser.add_argument("--out", required=True, help="output folder")
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    for path in write_listops(out, ListOpsGeneratorConfig(**args)):
        print(path)
