"""Sequential MNIST (sMNIST) and permuted sequential MNIST (psMNIST) from the idx files."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.dense import DenseSequences
from pspikessm.data.download import MNIST_RESOURCES
from pspikessm.data.errors import missing_data
from pspikessm.data.idx import read_idx
from pspikessm.data.splits import check_fraction, seeded_split
from pspikessm.data.textfiles import no_rows_error

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LENGTH = 784


def bitrev_permutation(length: int = LENGTH) -> torch.Tensor:
    """S4's psMNIST permutation: bit-reverse the indices of the next power of two (1024 for
    784, 10 bits) and keep those below ``length``, in that order. (length,) int64."""
    bits = max(1, (length - 1).bit_length())
    indices = torch.arange(2**bits)
    reversed_ = torch.zeros_like(indices)
    for bit in range(bits):
        reversed_ |= ((indices >> bit) & 1) << (bits - 1 - bit)
    return reversed_[reversed_ < length]


def random_permutation(seed: int, length: int = LENGTH) -> torch.Tensor:
    return torch.randperm(length, generator=torch.Generator().manual_seed(seed))


class MNISTDataModule(SequenceDataModule):
    """Pixel-by-pixel MNIST: 784 steps of one channel in [0, 1], 10 classes.

    Reads the idx files (plain or ``.gz``) from ``data_dir/MNIST/raw`` (torchvision's layout)
    or ``data_dir`` itself. The training file is split into train and val (54k/6k with the
    default ``val_fraction``) by a seeded permutation; the official 10k test set is the test
    split.

    Args:
        permutation: ``none`` (sMNIST), ``bitrev`` (psMNIST as in S4, :func:`bitrev_permutation`)
            or ``random`` (a permutation drawn with ``permutation_seed``).
        permutation_seed: seed of the ``random`` permutation.
        val_fraction: share of the training examples held out for validation.
        download: fetch the four idx files from the torchvision mirror when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 10
    resources = MNIST_RESOURCES
    cache_name = "mnist"

    def __init__(
        self,
        data_dir: str | Path = "data",
        permutation: Literal["none", "bitrev", "random"] = "none",
        permutation_seed: int = 0,
        val_fraction: float = 0.1,
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        if permutation not in ("none", "bitrev", "random"):
            raise ValueError(
                f"data.permutation must be none, bitrev or random, got {permutation!r}"
            )
        self.permutation = permutation
        self.permutation_seed = permutation_seed
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)

    def download_dir(self) -> Path:
        return self.data_dir / "MNIST" / "raw"

    def raw_dir(self) -> Path:
        nested = self.download_dir()
        return nested if nested.is_dir() else self.data_dir

    def _find(self, name: str) -> Path | None:
        for candidate in (self.raw_dir() / name, self.raw_dir() / f"{name}.gz"):
            if candidate.exists():
                return candidate
        return None

    def files(self) -> dict[str, tuple[Path, Path]]:
        """``split -> (images, labels)``; raises naming every missing file."""
        found = {name: self._find(name) for names in FILES.values() for name in names}
        if missing := [self.raw_dir() / name for name, path in found.items() if path is None]:
            raise missing_data(
                "MNIST",
                missing,
                f"the idx files (plain or .gz) in {self.download_dir()} or {self.data_dir}",
                [resource.url for resource in MNIST_RESOURCES],
                partial=len(missing) < len(found),
            )
        pairs = {split: (found[i], found[t]) for split, (i, t) in FILES.items()}
        return pairs  # type: ignore[return-value]

    def sources(self) -> list[Path]:
        return [path for pair in self.files().values() for path in pair]

    def order(self) -> torch.Tensor | None:
        """The pixel order (784,) applied to every image, or None for sMNIST."""
        if self.permutation == "bitrev":
            return bitrev_permutation()
        if self.permutation == "random":
            return random_permutation(self.permutation_seed)
        return None

    def build(self, part: str) -> dict:
        cache = {}
        for split, (image_path, label_path) in self.files().items():
            images, labels = read_idx(image_path), read_idx(label_path)
            if images.dim() == 3 and images.shape[0] == 0:
                raise no_rows_error(image_path, "images")
            if images.shape[1:] != (28, 28) or images.dtype != torch.uint8:
                raise ValueError(
                    f"{image_path}: expected uint8 images (N, 28, 28), got "
                    f"{images.dtype} {tuple(images.shape)}"
                )
            if labels.shape != images.shape[:1]:
                raise ValueError(
                    f"{label_path}: {tuple(labels.shape)} labels for "
                    f"{images.shape[0]} images in {image_path}"
                )
            if labels.numel() and int(labels.max()) > 9:
                raise ValueError(f"{label_path}: label {int(labels.max())} outside 0-9")
            cache[split] = {"images": images.reshape(-1, LENGTH), "labels": labels.long()}
        return cache

    def load_split(self, split: str) -> DenseSequences:
        data = self.preprocessed()["test" if split == "test" else "train"]
        images, labels = data["images"], data["labels"]
        if split != "test":
            index = seeded_split(labels.numel(), self.seed, val=self.val_fraction)[split]
            images, labels = images[index], labels[index]
        if (order := self.order()) is not None:
            images = images[:, order]
        return DenseSequences(images.unsqueeze(-1), labels, scale=1 / 255)
