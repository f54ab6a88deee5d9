"""LRA Image: CIFAR-10 as grayscale pixel sequences (length 1024) from the python pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.cache import cache_key, load_or_build
from pspikessm.data.dense import DenseSequences, seeded_split
from pspikessm.data.download import CIFAR10, fetch, missing_files_error

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
# ITU-R 601-2 luma, as PIL's convert("L") and torchvision's Grayscale.
LUMA = (0.299, 0.587, 0.114)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: ``(data (N, 3072) uint8, labels (N,) int64)``; errors name the file."""
    try:
        with path.open("rb") as handle:
            batch = pickle.load(handle, encoding="bytes")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{path}: not a CIFAR-10 python batch (a pickle with b'data' and b'labels'): {error!r}"
        ) from error
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ValueError(
            f"{path}: expected b'data' (N, 3072) and N labels, got {data.shape} and {labels.shape}"
        )
    if len(labels) and not (labels.min() >= 0 and labels.max() <= 9):
        raise ValueError(f"{path}: labels must lie in 0-9, found {labels.min()}..{labels.max()}")
    return data, labels


def to_grayscale(data: np.ndarray) -> torch.Tensor:
    """(N, 3072) RGB planes → (N, 1024) uint8 luma, rounded as PIL rounds it."""
    rgb = data.reshape(-1, 3, 1024).astype(np.float32)
    gray = np.tensordot(np.asarray(LUMA, dtype=np.float32), rgb, axes=([0], [1]))  # (N 1024)
    return torch.from_numpy(np.clip(np.rint(gray), 0, 255).astype(np.uint8))


class CIFAR10DataModule(SequenceDataModule):
    """Sequential grayscale CIFAR-10 (LRA Image): 1024 steps of one channel, 10 classes.

    Reads ``cifar-10-batches-py/`` in ``data_dir`` (own reader: torchvision's checks file
    checksums and is not a dependency). The 50k training images are split ``train``/``val``
    (45k/5k with the default ``val_size``) by a seeded permutation; ``test_batch`` is the test
    split. Pixels are scaled to [0, 1] and normalised with the mean and standard deviation of
    the training split (S4 uses the same statistics as fixed constants, 122.6/255 and 61/255).

    Args:
        val_size: training images held out for validation.
        download: fetch ``cifar-10-python.tar.gz`` (MD5-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 10
    vocab_size = 0
    d_input = 1

    def __init__(
        self, data_dir: str | Path = "data", val_size: int = 5000, download: bool = True, **kwargs
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        self.val_size = val_size
        self.download = download

    def files(self) -> dict[str, list[Path]]:
        return {
            split: [self.data_dir / FOLDER / name for name in names]
            for split, names in BATCHES.items()
        }

    def prepare_data(self) -> None:
        if self.download and not all(p.exists() for ps in self.files().values() for p in ps):
            fetch([CIFAR10], self.data_dir)
        self.preprocessed()

    def preprocessed(self) -> dict:
        files = self.files()
        sources = [path for paths in files.values() for path in paths]
        missing = [path for path in sources if not path.exists()]
        if missing:
            raise missing_files_error(
                "CIFAR-10", missing, f"the python batches in {self.data_dir / FOLDER}", [CIFAR10]
            )
        key = cache_key({"task": "cifar10-gray", "v": 1}, sources)
        return load_or_build(self.data_dir / ".cache" / f"cifar10-{key}.pt", lambda: _build(files))

    def load_split(self, split: str) -> DenseSequences:
        cache = self.preprocessed()
        train, val = seeded_split(cache["train"]["labels"].numel(), self.val_size, self.seed)
        train_pixels = cache["train"]["images"][train].double() / 255
        mean, std = train_pixels.mean().float(), train_pixels.std().float()
        if split == "test":
            images, labels = cache["test"]["images"], cache["test"]["labels"]
        else:
            index = train if split == "train" else val
            images, labels = cache["train"]["images"][index], cache["train"]["labels"][index]
        return DenseSequences(images.unsqueeze(-1), labels, scale=1 / 255, mean=mean, std=std)


def _build(files: dict[str, list[Path]]) -> dict:
    cache = {}
    for split, paths in files.items():
        batches = [read_batch(path) for path in paths]
        data = np.concatenate([data for data, _ in batches])
        labels = np.concatenate([labels for _, labels in batches])
        cache[split] = {"images": to_grayscale(data), "labels": torch.from_numpy(labels)}
    return cache
