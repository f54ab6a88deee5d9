"""ListOps generator following the Long Range Arena grammar, writing the LRA TSV layout.

Grammar (LRA's ``listops.py``): a node at depth ``d < max_depth`` becomes an operator with
probability ``operator_prob`` (LRA's ``VALUE_P = 0.25``; LRA draws a leaf when
``random() > VALUE_P``), otherwise a digit 0-9; nodes at ``max_depth`` are digits. An operator
takes 2..``max_args`` arguments and is one of MIN, MAX, MED (integer median: ``int`` of the
median, which averages the two middle values of an even count) and SM (sum mod 10). A tree
is kept when its length (digits, plus 2 per operator for ``[OP`` and ``]``) lies strictly
between ``min_length`` and ``max_length``; drawing a tree stops as soon as it is too long, and
settings that cannot produce a tree in reasonable time are refused before drawing
(:func:`check_feasible`, from the grammar's exact length distribution). Rows are written as
LRA writes them: nested parentheses around every application, a ``Source\\tTarget`` header.

Command::

    pspikessm make-listops --out data/my-listops --max-depth 4 --max-length 200
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from pspikessm.data.progress import Advance, progress

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
HEADER = "Source\tTarget"


@dataclass
class ListOpsGeneratorConfig:
    """Settings of a generated ListOps set (defaults: the LRA release, smaller counts).

    Raises:
        ValueError: naming each setting outside its range (before anything is generated).
    """

    num_train: int = 96000  # rows in basic_train.tsv
    num_val: int = 2000  # rows in basic_val.tsv
    num_test: int = 2000  # rows in basic_test.tsv
    min_length: int | None = None  # keep trees strictly longer (tokens); None: max_length // 4
    max_length: int = 2000  # keep trees strictly shorter than this (tokens)
    max_depth: int = 10  # nodes at this depth are digits
    max_args: int = 10  # arguments per operator: 2..max_args
    operator_prob: float = 0.25  # chance that a node above max_depth is an operator
    seed: int = 0  # the whole set is a function of the settings

    def __post_init__(self) -> None:
        if self.min_length is None:
            self.min_length = self.max_length // 4  # LRA: 500 of 2000
        problems = [
            f"{name}={getattr(self, name)} must be >= 0"
            for name in ("num_train", "num_val", "num_test", "min_length")
            if getattr(self, name) < 0
        ]
        if self.max_length - self.min_length < 2:
            problems.append(
                f"min_length={self.min_length} must be at least 2 below max_length="
                f"{self.max_length} (lengths lie strictly between them)"
            )
        if self.max_depth < 1:
            problems.append(f"max_depth={self.max_depth} must be >= 1")
        if self.max_args < 2:
            problems.append(f"max_args={self.max_args} must be >= 2")
        if not 0.0 <= self.operator_prob <= 1.0:
            problems.append(f"operator_prob={self.operator_prob} must lie in [0, 1]")
        if problems:
            raise ValueError("ListOps generator settings: " + "; ".join(problems))


# How long LRA's ListOps trees are: the exact length distribution of the grammar.
#
# The generator keeps a tree when its length lies strictly between ``min_length`` and
# ``max_length`` (rejection sampling, as LRA does). The share it keeps follows from the grammar
# alone, so a setting that can never (or hardly ever) produce a tree is refused at once
# instead of after hours of drawing.
#
# With ``p = operator_prob``, ``A = max_args`` and ``P_d`` the length distribution of a node at
# depth ``d``: ``P_D = δ_1`` (a digit at ``max_depth``) and for ``d < D``
#
#     P_d = (1 - p) δ_1 + p · shift_2( (1 / (A - 1)) Σ_{k=2..A} P_{d+1}^{*k} )
#
# (a digit, or ``[OP`` and ``]`` around k = 2..A children, ``*k`` the k-fold convolution).
# The root is at depth 1.

#: Refuse settings that would need more draws than this on average to keep all their rows
#: (about ten minutes of drawing on one core).
MAX_EXPECTED_DRAWS = 10**8


def length_distribution(config: ListOpsGeneratorConfig) -> np.ndarray:
    """``P(length = n)`` of a generated tree for ``n < max_length``: (max_length,) float64."""
    size = config.max_length
    leaf = np.zeros(size)
    leaf[1] = 1.0
    node = leaf  # depth max_depth: always a digit
    for _ in range(config.max_depth - 1):  # from depth max_depth - 1 up to the root
        power, arguments = node, np.zeros(size)
        for _count in range(2, config.max_args + 1):
            power = np.convolve(power, node)[:size]
            arguments += power
        operator = np.zeros(size)
        operator[2:] = arguments[: size - 2] / (config.max_args - 1)
        node = (1 - config.operator_prob) * leaf + config.operator_prob * operator
    return node


def longest_tree(config: ListOpsGeneratorConfig) -> int:
    """The most tokens a tree of these settings can have."""
    length = 1
    for _ in range(config.max_depth - 1):
        length = 2 + config.max_args * length
    return length


def acceptance(config: ListOpsGeneratorConfig) -> float:
    """The share of generated trees whose length lies strictly between the bounds."""
    return float(length_distribution(config)[config.min_length + 1 :].sum())


def check_feasible(config: ListOpsGeneratorConfig, rows: int) -> float:
    """The acceptance of ``config``; an error naming the settings if ``rows`` rows would take
    too long (or forever) to draw."""
    kept = acceptance(config)
    if kept == 0.0:
        raise ValueError(
            f"no ListOps tree with max_depth={config.max_depth}, max_args={config.max_args} "
            f"and operator_prob={config.operator_prob} has a length strictly between "
            f"min_length={config.min_length} and max_length={config.max_length} (the longest "
            f"possible has {longest_tree(config)} tokens); lower min_length or raise max_depth "
            "/ max_args"
        )
    if rows / kept > MAX_EXPECTED_DRAWS:
        raise ValueError(
            f"only a share {kept:.2g} of ListOps trees with max_depth={config.max_depth}, "
            f"max_args={config.max_args}, operator_prob={config.operator_prob} lies strictly "
            f"between min_length={config.min_length} and max_length={config.max_length}: "
            f"{rows} rows would need about {rows / kept:.2g} draws; widen the length range"
        )
    return kept


class _TooLong(Exception):
    """A tree reached ``max_length`` tokens while being drawn: it will be rejected."""


def _below(rng: random.Random, n: int) -> int:
    """``rng.randrange(n)`` with the very same draws, without its argument checks (the
    generator's hot path): ``getrandbits`` of ``n``'s bit length until the value is < n."""
    bits = n.bit_length()
    value = rng.getrandbits(bits)
    while value >= n:
        value = rng.getrandbits(bits)
    return value


def generate_tree(
    rng: random.Random, config: ListOpsGeneratorConfig, budget: int | None = None
) -> tuple[str, int, int]:
    """One random expression as LRA's ``generate_tree`` draws it: ``(source, value, length)``.

    ``source`` is LRA's string form, ``( ( ( [MAX 2 ) 9 ) ] )``-style nesting of every
    application; ``length`` counts digits and 2 tokens per operator (``[OP`` and ``]``).
    ``budget``: the most tokens the tree may have (default ``max_length - 1``). Drawing stops
    with :class:`_TooLong` as soon as it is exceeded: such a tree would be rejected anyway,
    and trees within budget take the same random draws as LRA's unbounded recursion.
    """
    budget = config.max_length - 1 if budget is None else budget
    if config.max_depth > 1 and rng.random() <= config.operator_prob:
        return _operator(rng, config, 1, budget)
    digit = _below(rng, 10)
    return str(digit), digit, 1


def _operator(
    rng: random.Random, config: ListOpsGeneratorConfig, depth: int, budget: int
) -> tuple[str, int, int]:
    """An operator node at ``depth`` and its arguments (see :func:`generate_tree`)."""
    length = 2
    if length > budget:
        raise _TooLong
    sources, values = [], []
    for _ in range(2 + _below(rng, config.max_args - 1)):
        # Each argument: an operator with probability operator_prob above max_depth, else a
        # digit (drawn inline: most nodes are digits).
        if depth + 1 < config.max_depth and rng.random() <= config.operator_prob:
            source, value, sub_length = _operator(rng, config, depth + 1, budget - length)
        else:
            value = rng.getrandbits(4)
            while value >= 10:
                value = rng.getrandbits(4)
            source, sub_length = str(value), 1
            if length + 1 > budget:
                raise _TooLong
        sources.append(source)
        values.append(value)
        length += sub_length
    operator = OPERATORS[_below(rng, len(OPERATORS))]  # LRA draws it after the arguments
    nested = "( " * (len(sources) + 1) + f"{operator} " + " ) ".join(sources) + f" ) {END} )"
    return nested, apply_operator(operator, values), length


def reference_tree(
    rng: random.Random, config: ListOpsGeneratorConfig, depth: int = 1
) -> tuple[object, int]:
    """LRA's ``generate_tree`` as written: the plain reference :func:`generate_tree` is tested
    against. Returns ``(tree, length)``, the tree as nested tuples ``((("[OP", a1), a2), "]")``
    (see :func:`reference_source` and :func:`reference_value`)."""
    if not (depth < config.max_depth and rng.random() <= config.operator_prob):
        return rng.choice(range(10)), 1
    length, arguments = 2, []
    for _ in range(rng.randint(2, config.max_args)):
        subtree, sub_length = reference_tree(rng, config, depth + 1)
        arguments.append(subtree)
        length += sub_length
    tree: object = (rng.choice(OPERATORS), arguments[0])
    for argument in arguments[1:]:
        tree = (tree, argument)
    return (tree, END), length


def reference_source(tree: object) -> str:
    """LRA's ``to_string``: ``( ... )`` around every application."""
    if isinstance(tree, tuple):
        return f"( {reference_source(tree[0])} {reference_source(tree[1])} )"
    return str(tree)


def reference_value(tree: object) -> int:
    """The value of a :func:`reference_tree`, walking its nested applications."""
    if isinstance(tree, int):
        return tree
    body, arguments = tree[0], []  # type: ignore[index]
    while isinstance(body[0], tuple):
        body, last = body
        arguments.append(reference_value(last))
    operator, first = body
    return apply_operator(operator, [reference_value(first), *arguments[::-1]])


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


def generate_rows(
    config: ListOpsGeneratorConfig,
    count: int,
    rng: random.Random,
    seen: set[str],
    advance: Advance = lambda rows: None,
) -> list[tuple[str, int]]:
    """``count`` distinct rows ``(source, target)`` not already in ``seen``."""
    kept = check_feasible(config, count)
    rows: list[tuple[str, int]] = []
    attempts = 0
    while len(rows) < count:
        attempts += 1
        if attempts > 100 * count / kept + 100000:  # expected: count / kept
            raise RuntimeError(
                f"could only generate {len(rows)} of {count} distinct ListOps rows with {config}; "
                "widen the length range or raise max_depth / max_args"
            )
        try:
            source, value, length = generate_tree(rng, config)
        except _TooLong:
            continue
        if length <= config.min_length or source in seen:  # type: ignore[operator]
            continue
        seen.add(source)
        rows.append((source, value))
        advance(1)
    return rows


def write_listops(out_dir: str | Path, config: ListOpsGeneratorConfig) -> list[Path]:
    """Write ``basic_{train,val,test}.tsv`` under ``out_dir``; the splits share no row."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    seen: set[str] = set()
    paths = []
    counts = {"train": config.num_train, "val": config.num_val, "test": config.num_test}
    with progress("Generating ListOps rows", sum(counts.values())) as advance:
        for split, count in counts.items():
            rows = generate_rows(config, count, rng, seen, advance)
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
    for field in fields(defaults):
        default = None if field.name == "min_length" else getattr(defaults, field.name)
        kind = float if field.name == "operator_prob" else int
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=kind, default=default)
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    try:
        config = ListOpsGeneratorConfig(**args)
        check_feasible(config, config.num_train + config.num_val + config.num_test)
    except ValueError as error:
        message = str(error)
        for name in args:  # name the command's options, not the fields
            message = re.sub(rf"\b{name}\b", f"--{name.replace('_', '-')}", message)
        parser.error(message)
    for path in write_listops(out, config):
        print(path)
