"""LRA Image: CIFAR-10 as grayscale pixel sequences (length 1024) from the python pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.dense import DenseSequences
from pspikessm.data.download import CIFAR10
from pspikessm.data.errors import require_files
from pspikessm.data.splits import check_fraction, seeded_split

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
# ITU-R 601-2 luma in PIL's fixed point (libImaging/Convert.c, L24: weights x 65536, +0.5,
# shifted down 16 bits), so the gray levels are exactly those of PIL's convert("L"), which
# torchvision's Grayscale (the authors' loader) calls.
LUMA_16 = (19595, 38470, 7471)
# The authors' normalisation of the gray pixels in [0, 1] (S4's constants, basic.py CIFAR10).
MEAN, STD = 122.6 / 255, 61.0 / 255


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
    """(N, 3072) RGB planes → (N, 1024) uint8 luma, bit for bit PIL's ``convert("L")``:
    ``(R * 19595 + G * 38470 + B * 7471 + 32768) >> 16``."""
    rgb = data.reshape(-1, 3, 1024).astype(np.int64)
    weights = np.asarray(LUMA_16, dtype=np.int64)
    gray = (np.tensordot(weights, rgb, axes=([0], [1])) + (1 << 15)) >> 16  # (N 1024)
    return torch.from_numpy(gray.astype(np.uint8))


class CIFAR10DataModule(SequenceDataModule):
    """Sequential grayscale CIFAR-10 (LRA Image): 1024 steps of one channel, 10 classes.

    Reads ``cifar-10-batches-py/`` in ``data_dir`` (own reader: torchvision's checks file
    checksums and is not a dependency). The 50k training images are split ``train``/``val``
    (45k/5k with the default ``val_fraction``) by a seeded permutation; ``test_batch`` is the
    test split. Gray levels are PIL's (:func:`to_grayscale`); pixels are scaled to [0, 1]
    and normalised with the authors' fixed constants (:data:`MEAN` 122.6/255, :data:`STD`
    61/255, S4's), not statistics of the training split.

    Args:
        val_fraction: share of the training images held out for validation.
        download: fetch ``cifar-10-python.tar.gz`` (MD5-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 10
    resources = (CIFAR10,)
    cache_name = "cifar10"
    cache_version = 2  # 2: PIL's fixed-point gray levels

    def __init__(
        self,
        data_dir: str | Path = "data",
        val_fraction: float = 0.1,
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)

    def files(self) -> dict[str, list[Path]]:
        return {
            split: [self.data_dir / FOLDER / name for name in names]
            for split, names in BATCHES.items()
        }

    def sources(self) -> list[Path]:
        return require_files(
            "CIFAR-10",
            [path for paths in self.files().values() for path in paths],
            f"the python batches in {self.data_dir / FOLDER}",
            [CIFAR10.url],
        )

    def build(self, part: str) -> dict:
        cache = {}
        for split, paths in self.files().items():
            batches = [read_batch(path) for path in paths]
            data = np.concatenate([data for data, _ in batches])
            labels = np.concatenate([labels for _, labels in batches])
            cache[split] = {"images": to_grayscale(data), "labels": torch.from_numpy(labels)}
        return cache

    def load_split(self, split: str) -> DenseSequences:
        cache = self.preprocessed()
        if split == "test":
            images, labels = cache["test"]["images"], cache["test"]["labels"]
        else:
            index = self._held_out()[split]
            images, labels = cache["train"]["images"][index], cache["train"]["labels"][index]
        return DenseSequences(images.unsqueeze(-1), labels, scale=1 / 255, mean=MEAN, std=STD)

    def _held_out(self) -> dict[str, torch.Tensor]:
        count = self.preprocessed()["train"]["labels"].numel()
        return seeded_split(count, self.seed, val=self.val_fraction)
