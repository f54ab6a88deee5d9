"""ListOps (Long Range Arena) from ``listops-1000/basic_{train,val,test}.tsv``."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from pspikessm.data.base import SPLITS
from pspikessm.data.cache import cache_key, load_or_build
from pspikessm.data.collate import PackedSequences
from pspikessm.data.listops_generator import HEADER, ListOpsGeneratorConfig, write_listops
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import Vocabulary

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)

LRA_URL = "https://storage.googleapis.com/long-range-arena/lra_release.gz"
RELEASE_SUBDIR = "listops-1000"


def tokenize(source: str) -> list[str]:
    """S4's ListOps tokenisation: ``]`` → ``X``, drop parentheses, split on whitespace."""
    return source.replace("]", "X").replace("(", "").replace(")", "").split()


def read_rows(path: Path) -> list[tuple[list[str], int]]:
    """Parse a ListOps TSV into ``(tokens, target)`` rows; errors name the file and line."""
    rows = []
    with path.open() as handle:
        for line_number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if line_number == 1 and line == HEADER:
                continue
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) != 2:
                raise ValueError(
                    f"{path}:{line_number}: expected 2 tab-separated columns (Source, Target), "
                    f"got {len(columns)}"
                )
            source, target_text = columns
            tokens = tokenize(source)
            if not tokens:
                raise ValueError(f"{path}:{line_number}: empty Source expression")
            try:
                target = int(target_text)
            except ValueError:
                target = -1
            if not 0 <= target <= 9:
                raise ValueError(
                    f"{path}:{line_number}: Target must be an integer 0-9, got {target_text!r}"
                )
            rows.append((tokens, target))
    return rows


class ListOpsDataModule(TokenDataModule):
    """ListOps: bracketed MIN/MAX/MED/SM expressions over digits, 10 classes.

    Reads ``basic_{train,val,test}.tsv`` from ``data_dir`` or from ``data_dir/listops-1000``
    (the LRA release root). Tokens as S4 makes them, ``<eos>`` appended, sequences longer
    than ``max_length`` truncated (and counted). The vocabulary comes from the training
    split and is cached with the tokenised splits under ``data_dir/.cache``.

    Args:
        max_length: longest sequence in tokens, ``<eos>`` included.
        generate: when the files are absent, write a generated set with these settings
            (the quickstart's way to a real task without the LRA release).
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 10

    def __init__(
        self,
        data_dir: str | Path = "data/lra_release",
        max_length: int = 2048,
        generate: ListOpsGeneratorConfig | None = None,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        self.max_length = max_length
        self.generate = generate
        self._cache: dict | None = None

    def split_dir(self) -> Path:
        """The folder holding the TSV files."""
        nested = self.data_dir / RELEASE_SUBDIR
        if not (self.data_dir / "basic_train.tsv").exists() and nested.is_dir():
            return nested
        return self.data_dir

    def files(self) -> dict[str, Path]:
        folder = self.split_dir()
        return {split: folder / f"basic_{split}.tsv" for split in SPLITS}

    def prepare_data(self) -> None:
        self.preprocessed()

    def preprocessed(self) -> dict:
        """The vocabulary and tokenised splits, built once and cached on disk."""
        if self._cache is None:
            files = self.files()
            missing = [path for path in files.values() if not path.exists()]
            if missing and self.generate is not None:
                info(f"ListOps files absent: generating {self.generate} into {self.data_dir}")
                write_listops(self.data_dir, self.generate)
                files = self.files()
                missing = []
            if missing:
                raise FileNotFoundError(
                    "ListOps files not found: "
                    + ", ".join(str(path) for path in missing)
                    + f".\nExpected basic_train.tsv, basic_val.tsv and basic_test.tsv in {self.data_dir} "
                    f"or {self.data_dir / RELEASE_SUBDIR}. Get them from the LRA release {LRA_URL} "
                    "(a tar archive; unpack it and point data.data_dir at the folder holding "
                    f"{RELEASE_SUBDIR}/), or generate a set with "
                    f"`pspikessm make-listops --out {self.data_dir}`."
                )
            key = cache_key(
                {"task": "listops", "max_length": self.max_length, "v": 1}, files.values()
            )
            self._cache = load_or_build(
                self.data_dir / ".cache" / f"listops-{key}.pt", lambda: self._build(files)
            )
        return self._cache

    def _build(self, files: dict[str, Path]) -> dict:
        rows = {split: read_rows(path) for split, path in files.items()}
        vocabulary = Vocabulary.build(Counter(t for tokens, _ in rows["train"] for t in tokens))
        cache: dict = {"vocabulary": vocabulary.tokens}
        dtype = torch.uint8 if len(vocabulary) < 256 else torch.int32
        for split, split_rows in rows.items():
            sequences, targets, truncated = [], [], 0
            for tokens, target in split_rows:
                if len(tokens) > self.max_length - 1:
                    truncated += 1
                    tokens = tokens[: self.max_length - 1]
                ids = [*vocabulary.encode(tokens), vocabulary.eos_id]
                sequences.append(torch.tensor(ids, dtype=dtype))
                targets.append(target)
            if truncated:
                info(
                    f"ListOps {split}: truncated {truncated} of {len(split_rows)} sequences "
                    f"to max_length={self.max_length} tokens"
                )
            cache[split] = PackedSequences.from_list(sequences, targets).state()
        return cache

    def load_split(self, split: str) -> PackedSequences:
        return PackedSequences(**self.preprocessed()[split])
