"""Datasets of variable-length sequences and the padding collate function."""

from __future__ import annotations

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

    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    def state(self) -> dict[str, torch.Tensor]:
        return {"values": self.values, "offsets": self.offsets, "targets": self.targets}


def pad_collate(
    items: list[tuple[torch.Tensor, int]], pad_value: float = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch to its longest sequence.

    Returns ``inputs`` (B, L_max, ...) (integer tokens become int64), ``lengths`` (B,) and
    ``targets`` (B,).
    """
    sequences = [sequence for sequence, _ in items]
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    first = sequences[0]
    dtype = torch.int64 if not first.is_floating_point() else first.dtype
    inputs = torch.full(
        (len(sequences), int(lengths.max()), *first.shape[1:]), pad_value, dtype=dtype
    )
    for row, sequence in enumerate(sequences):
        inputs[row, : len(sequence)] = sequence
    targets = torch.tensor([target for _, target in items], dtype=torch.int64)
    return inputs, lengths, targets
