"""ListOps (Long Range Arena) from ``listops-1000/basic_{train,val,test}.tsv``."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from pspikessm.data.base import SPLITS
from pspikessm.data.collate import PackedSequences
from pspikessm.data.download import LRA_RELEASE, release_root
from pspikessm.data.errors import require_at_least, require_files
from pspikessm.data.listops_generator import (
    END,
    HEADER,
    OPERATORS,
    ListOpsGeneratorConfig,
    write_listops,
)
from pspikessm.data.textfiles import no_rows_error, read_lines
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import Vocabulary

log = logging.getLogger(__name__)
info = rank_zero_only(log.info)

RELEASE_SUBDIR = "listops-1000"
#: S4's tokenisation maps the closing bracket to this token.
CLOSE = "X"
#: The grammar's whole vocabulary (18 ids with the specials), known before any data is read.
VOCABULARY = Vocabulary.build(Counter([*map(str, range(10)), *OPERATORS, CLOSE]))


def tokenize(source: str) -> list[str]:
    """S4's ListOps tokenisation: ``]`` → ``X``, drop parentheses, split on whitespace."""
    return source.replace(END, CLOSE).replace("(", "").replace(")", "").split()


def read_rows(path: Path) -> list[tuple[list[str], int]]:
    """Parse a ListOps TSV into ``(tokens, target)`` rows; errors name the file and line."""
    rows = []
    for number, line in read_lines(path):
        if (number == 1 and line == HEADER) or not line.strip():
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise ValueError(
                f"{path}:{number}: expected 2 tab-separated columns (Source, Target), "
                f"got {len(columns)}"
            )
        source, target_text = columns
        tokens = tokenize(source)
        if not tokens:
            raise ValueError(f"{path}:{number}: empty Source expression")
        if unknown := sorted(set(tokens) - VOCABULARY.index.keys()):
            raise ValueError(
                f"{path}:{number}: {unknown} are not ListOps tokens (digits, "
                f"{', '.join(OPERATORS)}, {END}, parentheses)"
            )
        try:
            target = int(target_text)
        except ValueError:
            target = -1
        if not 0 <= target <= 9:
            raise ValueError(f"{path}:{number}: Target must be an integer 0-9, got {target_text!r}")
        rows.append((tokens, target))
    if not rows:
        raise no_rows_error(path, "ListOps rows")
    return rows


class ListOpsDataModule(TokenDataModule):
    """ListOps: bracketed MIN/MAX/MED/SM expressions over digits, 10 classes.

    Reads ``basic_{train,val,test}.tsv`` from ``data_dir``, ``data_dir/listops-1000`` (the
    LRA release root) or ``data_dir/lra_release/listops-1000``. Tokens as S4 makes them,
    ``<eos>`` appended, sequences longer than ``max_length`` truncated (and counted). The
    vocabulary is the grammar's 18 symbols (those of the LRA training split), so the model
    can be built before any file is read.

    Args:
        max_length: longest sequence in tokens, ``<eos>`` included.
        generate: when the files are absent, ``prepare_data`` writes a generated set with
            these settings into ``data_dir`` (the quickstart's way to a real task without the
            LRA release).
        download: when the files are absent, fetch the LRA release (about 7 GB, no published
            checksum) into ``data_dir``.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 10
    resources = (LRA_RELEASE,)
    cache_name = "listops"
    cache_version = 2

    def __init__(
        self,
        data_dir: str | Path = "data/lra_release",
        max_length: int = 2048,
        generate: ListOpsGeneratorConfig | None = None,
        download: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        require_at_least("max_length", max_length, 2)  # <eos> and at least one token
        self.max_length = max_length
        self.generate = generate

    @property
    def vocabulary(self) -> Vocabulary:
        return VOCABULARY

    def split_dir(self) -> Path:
        """The folder holding the TSV files."""
        nested = release_root(self.data_dir, RELEASE_SUBDIR) / RELEASE_SUBDIR
        if not (self.data_dir / "basic_train.tsv").exists() and nested.is_dir():
            return nested
        return self.data_dir

    def files(self) -> dict[str, Path]:
        folder = self.split_dir()
        return {split: folder / f"basic_{split}.tsv" for split in SPLITS}

    def sources(self) -> list[Path]:
        return require_files(
            "ListOps",
            list(self.files().values()),
            f"basic_train.tsv, basic_val.tsv and basic_test.tsv in {self.data_dir} or "
            f"{self.data_dir / RELEASE_SUBDIR} (the LRA release; or generate a set with "
            f"`pspikessm make-listops --out {self.data_dir}`)",
            [LRA_RELEASE.url],
        )

    def settings(self) -> dict:
        return {"max_length": self.max_length}

    def can_acquire(self) -> bool:
        return self.generate is not None or super().can_acquire()

    def regenerates(self) -> bool:
        return self.generate is not None

    def acquire(self) -> None:
        if self.generate is None:
            super().acquire()
            return
        info(
            f"ListOps files absent or incomplete (an interrupted generation): generating {self.generate} into {self.data_dir}"
        )
        write_listops(self.data_dir, self.generate)

    def build(self, part: str) -> dict:
        cache: dict = {}
        dtype = torch.uint8  # 18 ids
        for split, path in self.files().items():
            rows = read_rows(path)
            sequences, targets, truncated = [], [], 0
            for tokens, target in rows:
                if len(tokens) > self.max_length - 1:
                    truncated += 1
                    tokens = tokens[: self.max_length - 1]
                ids = [*VOCABULARY.encode(tokens), VOCABULARY.eos_id]
                sequences.append(torch.tensor(ids, dtype=dtype))
                targets.append(target)
            if truncated:
                info(
                    f"ListOps {split}: truncated {truncated} of {len(rows)} sequences "
                    f"to max_length={self.max_length} tokens"
                )
            cache[split] = PackedSequences.from_list(sequences, targets).state()
        return cache

    def load_split(self, split: str) -> PackedSequences:
        return PackedSequences(**self.preprocessed()[split])
