"""Datasets of variable-length sequences and the padding collate function."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset


class PackedSequences(Dataset):
    """Variable-length sequences stored as one flat tensor plus offsets (compact to cache).

    Args:
        values: (total_steps, ...) all sequences concatenated along dim 0.
        offsets: (num_sequences + 1,) start of each sequence in ``values``.
        targets: (num_sequences,) class labels.

    Items are ``(sequence (L_i, ...), target)``.
    """

    def __init__(self, values: torch.Tensor, offsets: torch.Tensor, targets: torch.Tensor) -> None:
        if offsets.numel() != targets.numel() + 1:
            raise ValueError(f"{offsets.numel()} offsets for {targets.numel()} targets")
        self.values, self.offsets, self.targets = values, offsets, targets

    @classmethod
    def from_list(cls, sequences: list[torch.Tensor], targets: list[int]) -> PackedSequences:
        lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
        offsets = torch.zeros(len(sequences) + 1, dtype=torch.int64)
        offsets[1:] = torch.cumsum(lengths, 0)
        values = torch.cat(sequences) if sequences else torch.zeros(0, dtype=torch.uint8)
        return cls(values, offsets, torch.tensor(targets, dtype=torch.int64))

    def __len__(self) -> int:
        return self.targets.numel()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        start, end = self.offsets[index], self.offsets[index + 1]
        return self.values[start:end], int(self.targets[index])

    def subset(self, index: torch.Tensor) -> PackedSequences:
        """The sequences at ``index`` (n,), repacked."""
        return PackedSequences.from_list(
            [self[int(i)][0] for i in index], self.targets[index].tolist()
        )

    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def state(self) -> dict[str, torch.Tensor]:
        return {"values": self.values, "offsets": self.offsets, "targets": self.targets}


def bucket_length(length: int, buckets: Sequence[int] | None) -> int:
    """The smallest of ``buckets`` that holds ``length`` steps (None: ``length`` itself).

    Padding a batch up to a few fixed lengths gives a compiled model (``model.compile``) a
    few static shapes instead of one per batch; CUDA graphs need them. The padded steps are
    masked (``lengths``), so a model gives the same outputs for the same spikes either way.
    """
    if not buckets:
        return length
    fitting = [bucket for bucket in buckets if bucket >= length]
    if not fitting:
        raise ValueError(
            f"a batch holds a sequence of {length} steps, longer than the largest of "
            f"data.length_buckets={list(buckets)}: add a bucket of at least {length}"
        )
    return min(fitting)


def pad_collate(
    items: list[tuple[torch.Tensor, int]],
    pad_value: float = 0,
    length_buckets: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch to its longest sequence, or up to the smallest of ``length_buckets``
    holding it (:func:`bucket_length`).

    Returns ``inputs`` (B, L_pad, ...) (integer tokens become int64), ``lengths`` (B,) and
    ``targets`` (B,).
    """
    sequences = [sequence for sequence, _ in items]
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    first = sequences[0]
    dtype = torch.int64 if not first.is_floating_point() else first.dtype
    padded = bucket_length(int(lengths.max()), length_buckets)
    inputs = torch.full((len(sequences), padded, *first.shape[1:]), pad_value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        inputs[row, : len(sequence)] = sequence
    targets = torch.tensor([target for _, target in items], dtype=torch.int64)
    return inputs, lengths, targets


class PackedPairs(Dataset):
    """Pairs of variable-length sequences (two-document tasks such as AAN retrieval).

    Args:
        first, second: the first and second sequence of every pair (same length and targets).

    Items are ``((sequence_1 (L_1,), sequence_2 (L_2,)), target)``; batch them with
    :func:`pad_pair_collate`.
    """

    def __init__(self, first: PackedSequences, second: PackedSequences) -> None:
        if not torch.equal(first.targets, second.targets):
            raise ValueError("the two halves of a pair dataset must share their targets")
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        (a, target), (b, _) = self.first[index], self.second[index]
        return (a, b), target


def pad_pair_collate(
    items: list[tuple[tuple[torch.Tensor, torch.Tensor], int]],
    pad_value: float = 0,
    length_buckets: Sequence[int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch of pairs to the longest sequence of either side (or its bucket).

    Returns ``inputs`` (B, 2, L_max), ``lengths`` (B, 2) and ``targets`` (B,): the batch
    format of two-document tasks (``inputs[:, 0]`` the first documents).
    """
    flat = [(sequence, target) for pair, target in items for sequence in pair]
    inputs, lengths, _ = pad_collate(flat, pad_value, length_buckets)  # (2B L), (2B)
    targets = torch.tensor([target for _, target in items], dtype=torch.int64)
    return inputs.view(len(items), 2, *inputs.shape[1:]), lengths.view(len(items), 2), targets
