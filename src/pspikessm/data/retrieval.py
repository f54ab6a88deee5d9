"""LRA Retrieval: do two ACL Anthology (AAN) papers cite each other? Character level."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pspikessm.data.cache import cache_key, load_or_build
from pspikessm.data.collate import PackedPairs, PackedSequences, pad_pair_collate
from pspikessm.data.download import LRA_RELEASE, fetch, missing_files_error, release_root
from pspikessm.data.text import char_table, encode_chars
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import Vocabulary

RELEASE_SUBDIR = "tsv_data"
#: Our split name → the release's file infix (``eval`` is the validation split).
FILE_SPLITS = {"train": "train", "val": "eval", "test": "test"}


def read_pairs(path: Path) -> list[tuple[str, str, int]]:
    """``(text1, text2, label)`` rows of an AAN TSV (no header; columns label, id1, id2,
    text1, text2); errors name the file and line."""
    rows = []
    with path.open(encoding="utf-8", newline="\n") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) != 5:
                raise ValueError(
                    f"{path}:{number}: expected 5 tab-separated columns (label, id1, id2, "
                    f"text1, text2), got {len(columns)}"
                )
            try:
                label = float(columns[0])
            except ValueError:
                label = -1.0
            if label not in (0.0, 1.0):
                raise ValueError(f"{path}:{number}: label must be 0 or 1, got {columns[0]!r}")
            rows.append((columns[3], columns[4], int(label)))
    return rows


class RetrievalDataModule(TokenDataModule):
    """AAN document matching: pairs of character sequences, 2 classes.

    Reads ``new_aan_pairs.{train,eval,test}.tsv`` from ``data_dir``, ``data_dir/tsv_data``
    (the LRA release root) or ``data_dir/lra_release/tsv_data``; ``eval`` is the validation
    split. Each document becomes its characters, truncated to ``max_length - 1``, then
    ``<eos>``; the vocabulary holds the characters of the training split seen at least
    ``min_freq`` times.

    Batches (``dual_input``): inputs (B, 2, L) int64 with ``inputs[:, 0]`` the first and
    ``inputs[:, 1]`` the second document, zero-padded to the longer of the batch; lengths
    (B, 2); targets (B,). The backbone encodes both halves with the same weights
    (``PSpikeSSM(dual_input=True)``, linked by the CLI).

    ``vocab_size`` is computed from the data when the CLI first asks for it.

    Args:
        max_length: longest document, ``<eos>`` included (4000 in LRA).
        min_freq: minimum training count of a character to get its own id.
        download: fetch the LRA release (about 7 GB, no published checksum) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 2
    d_input = 1
    dual_input = True
    collate_fn = staticmethod(pad_pair_collate)

    def __init__(
        self,
        data_dir: str | Path = "data/lra_release",
        max_length: int = 4000,
        min_freq: int = 1,
        download: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        self.max_length = max_length
        self.min_freq = min_freq
        self.download = download
        self._cache: dict | None = None

    def files(self) -> dict[str, Path]:
        name = "new_aan_pairs.train.tsv"
        folder = release_root(self.data_dir, RELEASE_SUBDIR) / RELEASE_SUBDIR
        if (self.data_dir / name).exists() or not folder.is_dir():
            folder = self.data_dir
        return {
            split: folder / f"new_aan_pairs.{infix}.tsv" for split, infix in FILE_SPLITS.items()
        }

    def prepare_data(self) -> None:
        self.preprocessed()

    def preprocessed(self) -> dict:
        if self._cache is None:
            files = self.files()
            if self.download and not all(path.exists() for path in files.values()):
                fetch([LRA_RELEASE], self.data_dir)
                files = self.files()
            missing = [path for path in files.values() if not path.exists()]
            if missing:
                raise missing_files_error(
                    "AAN retrieval",
                    missing,
                    f"new_aan_pairs.{{train,eval,test}}.tsv in {self.data_dir} or "
                    f"{self.data_dir / RELEASE_SUBDIR} (the LRA release)",
                    [LRA_RELEASE],
                )
            settings = {
                "task": "aan",
                "max_length": self.max_length,
                "min_freq": self.min_freq,
                "v": 1,
            }
            key = cache_key(settings, files.values())
            self._cache = load_or_build(
                self.data_dir / ".cache" / f"aan-{key}.pt", lambda: self._build(files)
            )
        return self._cache

    def _build(self, files: dict[str, Path]) -> dict:
        rows = {split: read_pairs(path) for split, path in files.items()}
        counts: Counter = Counter()
        for text1, text2, _ in rows["train"]:
            counts.update(text1)
            counts.update(text2)
        vocabulary = Vocabulary.build(counts, self.min_freq)
        table = char_table(vocabulary)
        cache: dict = {"vocabulary": vocabulary.tokens}
        for split, split_rows in rows.items():
            labels = [label for *_, label in split_rows]
            for side in (0, 1):
                sequences = [
                    encode_chars(row[side], table, self.max_length, vocabulary.eos_id)
                    for row in split_rows
                ]
                cache[f"{split}_{side}"] = PackedSequences.from_list(sequences, labels).state()
        return cache

    def load_split(self, split: str) -> PackedPairs:
        cache = self.preprocessed()
        return PackedPairs(
            PackedSequences(**cache[f"{split}_0"]), PackedSequences(**cache[f"{split}_1"])
        )
