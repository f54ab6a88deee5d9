"""The ListOps generator: LRA's grammar and draws, its length distribution, and its checks."""

from __future__ import annotations

import os
import random
import re
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pspikessm.data.listops_generator as generator
from pspikessm.data.listops_generator import (
    ListOpsGeneratorConfig,
    acceptance,
    generate_rows,
    generate_tree,
    length_distribution,
    longest_tree,
    main as make_listops,
    reference_source,
    reference_tree,
    reference_value,
)
from pspikessm.data.tasks.listops import tokenize


def evaluate_source(source: str) -> int:
    """An independent evaluator: a stack machine over the tokens of the LRA string."""
    stack: list[list] = []
    value = None
    for token in source.replace("(", " ").replace(")", " ").split():
        if token.startswith("["):
            stack.append([token])
        elif token == "]":
            operator, *arguments = stack.pop()
            value = {
                "[MIN": min,
                "[MAX": max,
                "[MED": lambda a: int(statistics.median(a)),
                "[SM": lambda a: sum(a) % 10,
            }[operator](arguments)
            if stack:
                stack[-1].append(value)
        else:
            stack[-1].append(int(token)) if stack else None
            value = int(token) if not stack else value
    assert not stack
    return value


def test_generator_targets_equal_independent_evaluation() -> None:
    config = ListOpsGeneratorConfig(min_length=5, max_length=200, max_depth=5, max_args=6)
    rows = generate_rows(config, 500, random.Random(1), set())
    assert len({source for source, _ in rows}) == 500
    for source, target in rows:
        assert evaluate_source(source) == target, source
        length = len(tokenize(source))
        assert config.min_length < length < config.max_length
    # Every operator appears, and targets cover several classes.
    text = " ".join(source for source, _ in rows)
    assert all(op in text for op in ("[MIN", "[MAX", "[MED", "[SM"))
    assert len({target for _, target in rows}) == 10


def test_fast_generator_draws_as_lras_recursion() -> None:
    """Each tree within the length budget is LRA's tree from the same random state, and takes
    the same draws; a longer one stops early (it would be rejected anyway)."""
    config = ListOpsGeneratorConfig(max_depth=6, max_args=6, min_length=10, max_length=60)
    rng = random.Random(7)
    stopped = 0
    for _ in range(3000):
        state = rng.getstate()
        reference = random.Random()
        reference.setstate(state)
        tree, length = reference_tree(reference, config)
        if length < config.max_length:
            assert generate_tree(rng, config) == (
                reference_source(tree),
                reference_value(tree),
                length,
            )
            assert rng.getstate() == reference.getstate()
        else:
            with pytest.raises(generator._TooLong):
                generate_tree(rng, config)
            stopped += 1
            rng.setstate(reference.getstate())
    assert stopped > 50  # the budget mattered


def test_length_distribution_matches_drawn_trees() -> None:
    config = ListOpsGeneratorConfig(max_depth=5, max_args=5, min_length=3, max_length=400)
    rng = random.Random(3)
    lengths = np.array([reference_tree(rng, config)[1] for _ in range(20000)])
    predicted = length_distribution(config)
    for bound in (1, 2, 8, 20, 60, 150):
        p = predicted[: bound + 1].sum()
        tolerance = 5 * np.sqrt(p * (1 - p) / len(lengths)) + 1e-9
        assert abs((lengths <= bound).mean() - p) <= tolerance, bound
    assert predicted.sum() <= 1.0 + 1e-12 and lengths.max() <= longest_tree(config)
    assert acceptance(config) == pytest.approx(predicted[4:].sum())


def test_default_min_length_follows_max_length() -> None:
    assert ListOpsGeneratorConfig().min_length == 500  # LRA: strictly between 500 and 2000
    assert ListOpsGeneratorConfig(max_length=200).min_length == 50


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--min-length", "500", "--max-length", "200"], "--min-length=500 must be at least 2"),
        (["--max-depth", "0"], "--max-depth=0 must be >= 1"),
        (["--num-train", "-1", "--max-args", "1"], "--num-train=-1 must be >= 0.*--max-args=1"),
        (["--max-depth", "2", "--min-length", "50"], "longest possible has 12 tokens"),
        (["--operator-prob", "0.01"], "100000 rows would need about"),
    ],
)
def test_impossible_settings_fail_before_drawing(tmp_path, monkeypatch, capsys, options, message):
    monkeypatch.setattr(generator, "generate_tree", lambda *a: pytest.fail("drew a tree"))
    with pytest.raises(SystemExit) as exit_:
        make_listops(["--out", str(tmp_path / "out"), *options])
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_readme_example_settings_draw_valid_rows() -> None:
    """`make-listops --max-depth 4 --max-length 200`: min_length 50, 6 % of trees kept."""
    config = ListOpsGeneratorConfig(max_depth=4, max_length=200)
    assert acceptance(config) == pytest.approx(0.06, abs=0.005)
    rows = generate_rows(config, 200, random.Random(0), set())
    assert all(50 < len(tokenize(source)) < 200 for source, _ in rows)


def test_make_listops_command(tmp_path: Path, capsys) -> None:
    make_listops(
        [
            "--out", str(tmp_path), "--num-train", "10", "--num-val", "3", "--num-test", "3",
            "--min-length", "3", "--max-length", "30", "--max-depth", "3", "--seed", "4",
        ]
    )  # fmt: skip
    lines = (tmp_path / "basic_train.tsv").read_text().splitlines()
    assert lines[0] == "Source\tTarget" and len(lines) == 11
    assert "basic_test.tsv" in capsys.readouterr().out


def test_generator_needs_neither_torch_nor_lightning() -> None:
    """The generator (and its checks) start without the heavy imports, so a bad setting fails
    at once; `pspikessm make-listops` gains that too once pspikessm.cli imports Lightning lazily."""
    code = (
        "import sys\n"
        "from pspikessm.data.listops_generator import main\n"
        "try:\n"
        "    main(['--out', 'never', '--min-length', '500', '--max-length', '200'])\n"
        "except SystemExit as error:\n"
        "    assert error.code == 2\n"
        "assert not {'torch', 'lightning'} & set(sys.modules), sorted(sys.modules)\n"
    )
    source = Path(__file__).resolve().parents[2] / "src"
    result = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(source)},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--min-length=500 must be at least 2 below --max-length=200" in result.stderr
