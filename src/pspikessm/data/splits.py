"""The one way a task holds out part of a split: a seeded permutation cut by fractions."""

from __future__ import annotations

import torch


def check_fraction(option: str, value: float) -> float:
    """``value`` if it is a share in [0, 1), else an error naming ``option``."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{option} must be a fraction in [0, 1), got {value}")
    return value


def held_out_count(count: int, fraction: float) -> int:
    """``floor(count * fraction)``, immune to float error (0.1 * 60000 is 6000, not 5999)."""
    return int(round(count * fraction, 6))


def seeded_split(count: int, seed: int, **fractions: float) -> dict[str, torch.Tensor]:
    """Split ``range(count)`` by one permutation seeded with ``seed``.

    Each named part (``val=0.1, test=0.1``) takes ``held_out_count(count, fraction)`` indices,
    in the order given, from the front of the permutation; ``train`` is the rest. Each part's
    indices are sorted. The same (count, seed, fractions) always give the same split.

    Returns:
        part name → (n_part,) int64 indices.
    """
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    parts, start = {}, 0
    for name, fraction in fractions.items():
        size = held_out_count(count, fraction)
        parts[name] = order[start : start + size].sort().values
        start += size
    if start > count:
        raise ValueError(f"the held-out fractions {fractions} add up to more than the whole")
    parts["train"] = order[start:].sort().values
    return parts
