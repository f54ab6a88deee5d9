"""How long LRA's ListOps trees are: the exact length distribution of the grammar.

The generator keeps a tree when its length lies strictly between ``min_length`` and
``max_length`` (rejection sampling, as LRA does). The share it keeps follows from the grammar
alone, so a setting that can never (or hardly ever) produce a tree is refused at once
instead of after hours of drawing.

With ``p = operator_prob``, ``A = max_args`` and ``P_d`` the length distribution of a node at
depth ``d``: ``P_D = δ_1`` (a digit at ``max_depth``) and for ``d < D``

    P_d = (1 - p) δ_1 + p · shift_2( (1 / (A - 1)) Σ_{k=2..A} P_{d+1}^{*k} )

(a digit, or ``[OP`` and ``]`` around k = 2..A children, ``*k`` the k-fold convolution).
The root is at depth 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from pspikessm.data.listops_generator import ListOpsGeneratorConfig

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
