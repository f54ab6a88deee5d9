"""A user task outside the package: classify sequences stored one per file in class folders.

Layout (``data_dir``)::

    train/<class name>/<any name>.csv|.npy   one sequence per file; the folder is its label
    val/<class name>/...                      optional: without it, ``val_fraction`` of train
                                              is held out (seeded)
    test/<class name>/...                     optional: needed only by ``pspikessm test``

A ``.csv`` file holds one time step per row and one channel per column (comma separated; a
first row that is not numeric is taken as a header). A ``.npy`` file holds an array of shape
(L,) or (L, C). With ``vocab_size > 0`` every file holds a single column of integer token ids
in ``[0, vocab_size)`` instead of real values.

Run it (from the repository root)::

    python examples/csv_sequences/make_toy_data.py --out data/toy-csv
    PYTHONPATH=examples/csv_sequences pspikessm fit --config examples/csv_sequences/config.yaml
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from pspikessm.data import SequenceDataModule
from pspikessm.data.collate import PackedSequences
from pspikessm.data.errors import DataNotFound
from pspikessm.data.splits import check_fraction, seeded_split
from pspikessm.data.textfiles import read_lines

SUFFIXES = (".csv", ".npy")


#: The largest float32: the model reads float32, so larger values would become infinite.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_sequence(path: Path) -> np.ndarray:
    """One sequence file as a float64 array (L, C); errors name the file (and line)."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from error
    else:
        array = read_csv(path)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"{path}: expected a (length, channels) array, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: contains NaN or infinite values")
    if (np.abs(array) > FLOAT32_MAX).any():
        row = int(np.nonzero((np.abs(array) > FLOAT32_MAX).any(axis=1))[0][0])
        raise ValueError(f"{path}: row {row}: a value beyond float32's range (±{FLOAT32_MAX:.3g})")
    return array.astype(np.float64, copy=False)


def read_csv(path: Path) -> np.ndarray:
    """Rows of comma-separated numbers → (L, C); a non-numeric first line is a header."""
    rows = []
    # read_lines: a byte that is not UTF-8 is an error naming the file, line and byte.
    for line_number, line in read_lines(path):
        fields = line.strip().split(",")
        if fields == [""]:
            continue
        try:
            rows.append([float(field) for field in fields])
        except ValueError:
            if line_number == 1:
                continue  # header
            raise ValueError(
                f"{path}:{line_number}: expected numbers, got {line.strip()!r}"
            ) from None
        if any(abs(value) > FLOAT32_MAX for value in rows[-1]):
            raise ValueError(
                f"{path}:{line_number}: a value beyond float32's range (±{FLOAT32_MAX:.3g}), "
                f"which the model reads: {line.strip()!r}"
            )
        if len(rows[-1]) != len(rows[0]):
            raise ValueError(
                f"{path}:{line_number}: {len(rows[-1])} columns, the first row has {len(rows[0])}"
            )
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(rows[0]) if rows else 0)


def list_split(folder: Path) -> dict[str, list[Path]]:
    """Class name → its sequence files, for the class folders of one split."""
    if not folder.is_dir():
        return {}
    classes = {}
    for class_dir in sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
    ):
        files = sorted(p for p in class_dir.iterdir() if p.suffix in SUFFIXES)
        if not files:
            raise ValueError(f"{class_dir}: class folder holds no {'/'.join(SUFFIXES)} files")
        classes[class_dir.name] = files
    return classes


class CSVSequenceDataModule(SequenceDataModule):
    """Sequence classification from a folder of CSV/NumPy files (layout: module docstring).

    Args:
        classes: class folder names in label order; None: the sorted folder names of train/.
            Giving it (with ``d_input``) lets the CLI build the model without reading files.
        d_input: channels per step; None: read from the first training file.
        vocab_size: 0 for real-valued files; > 0 when files hold integer token ids.
        max_length: longer sequences are truncated (and counted); None keeps them whole.
        normalize: standardise each channel with the training split's mean and std.
        val_fraction: share of train held out for validation when there is no val/ folder.
        **kwargs: see :class:`pspikessm.data.SequenceDataModule`.
    """

    cache_name = "csv-sequences"

    def __init__(
        self,
        data_dir: str | Path = "data/toy-csv",
        classes: list[str] | None = None,
        d_input: int | None = None,
        vocab_size: int = 0,
        max_length: int | None = None,
        normalize: bool = True,
        val_fraction: float = 0.1,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        self._classes = list(classes) if classes is not None else None
        self._d_input = d_input
        self.vocab_size = vocab_size
        self.max_length = max_length
        self.normalize = normalize and vocab_size == 0
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)

    # The data protocol (pspikessm.data.protocol), read by the CLI before setup().
    @property
    def classes(self) -> list[str]:
        if self._classes is None:
            self._classes = list(self._train_files())
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def d_input(self) -> int:
        if self._d_input is None:
            first = next(iter(self._train_files().values()))[0]
            self._d_input = read_sequence(first).shape[1]
        return self._d_input

    def _train_files(self) -> dict[str, list[Path]]:
        files = list_split(self.data_dir / "train")
        if not files:
            folder = self.data_dir / "train"
            raise DataNotFound(
                f"no class folders in {folder}; expected train/<class name>/<sequence>.csv|.npy "
                "(see examples/csv_sequences/README.md)",
                [folder],
                partial=False,
            )
        return files

    def _split_files(self) -> dict[str, dict[str, list[Path]]]:
        """Split → class name → its files (empty for an absent val/ or test/ folder)."""
        return {
            "train": self._train_files(),
            **{s: list_split(self.data_dir / s) for s in ("val", "test")},
        }

    # The skeleton of pspikessm.data.SequenceDataModule: sources → build → cache.
    def sources(self) -> list[Path]:
        return [
            f for split in self._split_files().values() for files in split.values() for f in files
        ]

    def settings(self) -> dict:
        return {
            "classes": self.classes,
            "d_input": self.d_input,
            "vocab_size": self.vocab_size,
            "max_length": self.max_length,
            "normalize": self.normalize,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
        }

    def build(self, part: str) -> dict:
        """All splits read, checked, normalised and packed (cached under ``cache_dir``)."""
        files = self._split_files()
        read = {split: self._read_split(split, f) for split, f in files.items() if f}
        if "val" not in read:
            sequences, targets = read["train"]
            parts = seeded_split(len(targets), self.seed, val=self.val_fraction)
            read.update(
                {
                    name: ([sequences[i] for i in index], [targets[i] for i in index])
                    for name, index in parts.items()
                }
            )
        if self.normalize:
            steps = torch.cat(read["train"][0])  # (total steps, C)
            mean, std = steps.mean(0), steps.std(0).clamp_min(1e-8)
            read = {s: ([(x - mean) / std for x in xs], ys) for s, (xs, ys) in read.items()}
        return {
            split: PackedSequences.from_list(sequences, targets).state()
            for split, (sequences, targets) in read.items()
        }

    def load_split(self, split: str) -> PackedSequences:
        state = self.preprocessed().get(split)
        if state is None:
            folder = self.data_dir / split
            raise DataNotFound(
                f"no {split}/ folder with class folders in {self.data_dir}", [folder], False
            )
        return PackedSequences(**state)

    def _read_split(
        self, split: str, files: dict[str, list[Path]]
    ) -> tuple[list[torch.Tensor], list[int]]:
        label = {name: index for index, name in enumerate(self.classes)}
        sequences, targets, truncated = [], [], 0
        for class_name, paths in files.items():
            if class_name not in label:
                raise ValueError(
                    f"{self.data_dir / split / class_name}: unknown class {class_name!r}; "
                    f"the classes are {self.classes}"
                )
            for path in paths:
                sequence = self._to_tensor(path, read_sequence(path))
                if self.max_length is not None and len(sequence) > self.max_length:
                    sequence, truncated = sequence[: self.max_length], truncated + 1
                sequences.append(sequence)
                targets.append(label[class_name])
        if truncated:
            rank_zero_info(f"{split}: truncated {truncated} sequences to {self.max_length} steps")
        return sequences, targets

    def _to_tensor(self, path: Path, array: np.ndarray) -> torch.Tensor:
        """(L,) int64 tokens or (L, d_input) float32, checked against the settings."""
        if self.vocab_size > 0:
            tokens = array[:, 0]
            valid = array.shape[1] == 1 and (tokens == np.round(tokens)).all()
            if not valid or tokens.min() < 0 or tokens.max() >= self.vocab_size:
                raise ValueError(
                    f"{path}: with data.vocab_size={self.vocab_size} a file must be one column "
                    f"of integers in [0, {self.vocab_size})"
                )
            return torch.from_numpy(tokens.astype(np.int64))
        if array.shape[1] != self.d_input:
            raise ValueError(
                f"{path}: {array.shape[1]} channels (columns), expected d_input={self.d_input}"
            )
        return torch.from_numpy(array.astype(np.float32))
