"""How a task holds out part of a split: a seeded permutation cut by fractions, or (the
authors' Speech Commands split) a seeded stratified split."""

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


def proportional_counts(class_counts: list[int], total: int) -> list[int]:
    """``total`` shared among classes in proportion to ``class_counts`` (largest remainders;
    ties go to the lower class index); the shares sum to ``total``."""
    whole = sum(class_counts)
    if whole == 0:
        return [0] * len(class_counts)
    exact = [count * total / whole for count in class_counts]
    shares = [int(value) for value in exact]
    by_remainder = sorted(range(len(exact)), key=lambda c: (shares[c] - exact[c], c))
    for c in by_remainder[: total - sum(shares)]:
        shares[c] += 1
    return shares


def stratified_split(
    labels: torch.Tensor, seed: int, train: float = 0.7, val_of_rest: float = 0.5
) -> dict[str, torch.Tensor]:
    """A random stratified train/val/test split, sized as scikit-learn's ``train_test_split``
    twice (the authors' Speech Commands split: 70 % train, the rest halved into val/test).

    ``floor(train * N)`` examples train, ``floor(val_of_rest * rest)`` of the rest validate,
    the others test; each class contributes in proportion to its size
    (:func:`proportional_counts`), its examples drawn by a permutation seeded with ``seed``.

    Args:
        labels: (N,) int64 class of each example.

    Returns:
        ``train``, ``val``, ``test`` → sorted (n_part,) int64 indices.
    """
    generator = torch.Generator().manual_seed(seed)
    classes = labels.unique().tolist()
    members = [torch.nonzero(labels == c).squeeze(1) for c in classes]
    members = [m[torch.randperm(len(m), generator=generator)] for m in members]
    sizes = [len(m) for m in members]
    n_train = int(train * len(labels))
    train_shares = proportional_counts(sizes, n_train)
    rest = [size - share for size, share in zip(sizes, train_shares, strict=True)]
    val_shares = proportional_counts(rest, int(val_of_rest * sum(rest)))
    parts: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for m, n_t, n_v in zip(members, train_shares, val_shares, strict=True):
        parts["train"].append(m[:n_t])
        parts["val"].append(m[n_t : n_t + n_v])
        parts["test"].append(m[n_t + n_v :])
    return {name: torch.cat(chunks).sort().values for name, chunks in parts.items()}
