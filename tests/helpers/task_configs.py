"""The task configs under ``configs/`` and, for each, a writer of its tiny data set."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.task_files import (
    full_and_short_clips,
    random_mnist,
    tone_clips,
    write_aan,
    write_cifar,
    write_imdb,
    write_pathfinder,
    write_speech,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
#: Every task config: a published task each (the quickstart, overlays and presets are not tasks).
TASK_CONFIGS = sorted(
    path for folder in ("lra", "mnist", "speech") for path in (CONFIGS / folder).glob("*.yaml")
)

#: config → (writer of its tiny data set, extra overrides)
TASKS = {
    "lra/text.yaml": (lambda d: write_imdb(d, per_class=4), ["--data.min_freq=1"]),
    "lra/retrieval.yaml": (lambda d: write_aan(d, rows=8), []),
    "lra/image.yaml": (lambda d: write_cifar(d, per_batch=4), ["--data.val_fraction=0.2"]),
    "lra/pathfinder.yaml": (lambda d: write_pathfinder(d, 32, count=20), []),
    "lra/pathx.yaml": (lambda d: write_pathfinder(d, 128, count=10), []),
    "mnist/smnist.yaml": (lambda d: random_mnist(d, 24, 8), ["--data.val_fraction=0.25"]),
    "mnist/psmnist.yaml": (lambda d: random_mnist(d, 24, 8), ["--data.val_fraction=0.25"]),
    "speech/sc10.yaml": (lambda d: write_speech(d, tone_clips(["yes", "no"], 4)), []),
    "speech/sc35.yaml": (lambda d: write_speech(d, tone_clips(["bed", "cat"], 4)), []),
    "speech/sc10_authors.yaml": (
        lambda d: write_speech(d, full_and_short_clips({"yes": 8, "no": 8})),
        [],
    ),
}

#: The fast tier's task fits: tokens (text) and document pairs (retrieval, the two-input
#: backbone); the others, among them real-valued pixels and the 16k-step ones, run slow.
FAST_TASKS = ("lra/text.yaml", "lra/retrieval.yaml")


def setting_lines(path: Path) -> list[str]:
    """The lines of ``path`` that set something (not blank, not a comment), trailing comments
    dropped."""
    lines = (line.split(" #")[0].rstrip() for line in path.read_text().splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def key_value_lines(path: Path) -> set[str]:
    """The setting lines of ``path`` that give a key a value (``key: value``), unindented."""
    return {line.strip() for line in setting_lines(path) if re.match(r"\s*(- )?[\w.+]+: *\S", line)}
