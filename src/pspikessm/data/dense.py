"""Fixed-length real-valued sequences stored compactly (uint8 pixels, int16 audio)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


class DenseSequences(Dataset):
    """Equal-length sequences kept in their storage dtype and normalised on access.

    Args:
        values: (N, L, C) samples in any dtype (uint8 pixels keep a 60k-image set at 47 MB).
        targets: (N,) class labels.
        scale: multiplies the stored values first (1/255 maps pixels to [0, 1]).
        mean, std: (C,) or scalar; items are ``(values * scale - mean) / std``.
        index: (M,) rows of ``values`` that make up this split, or None for all; splits of one
            large tensor (Path-X: 3.3 GB of uint8) then share it instead of copying it.

    Items are ``(sequence (L, C) float32, target)``.
    """

    def __init__(
        self,
        values: torch.Tensor,
        targets: torch.Tensor,
        scale: float = 1.0,
        mean: torch.Tensor | float = 0.0,
        std: torch.Tensor | float = 1.0,
        index: torch.Tensor | None = None,
    ) -> None:
        if values.dim() != 3 or values.shape[0] != targets.numel():
            raise ValueError(
                f"values must be (N, L, C) with N = {targets.numel()} targets, "
                f"got {tuple(values.shape)}"
            )
        self.values = values
        self.index = torch.arange(targets.numel()) if index is None else index
        self.targets = targets[self.index]
        self.scale = scale
        self.mean = torch.as_tensor(mean, dtype=torch.float32)
        self.std = torch.as_tensor(std, dtype=torch.float32)

    def __len__(self) -> int:
        return self.targets.numel()

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sequence = self.values[self.index[index]].to(torch.float32) * self.scale  # (L C)
        return (sequence - self.mean) / self.std, int(self.targets[index])
