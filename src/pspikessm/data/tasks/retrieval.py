"""LRA Retrieval: do two ACL Anthology (AAN) papers cite each other? Character level."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pspikessm.data.collate import PackedPairs, PackedSequences, pad_pair_collate
from pspikessm.data.download import LRA_RELEASE, release_root
from pspikessm.data.errors import require_at_least, require_files
from pspikessm.data.progress import progress
from pspikessm.data.textfiles import no_rows_error, read_lines
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import Vocabulary, char_table, encode_chars

RELEASE_SUBDIR = "tsv_data"
#: Our split name → the release's file infix (``eval`` is the validation split).
FILE_SPLITS = {"train": "train", "val": "eval", "test": "test"}


def read_pairs(path: Path) -> list[tuple[str, str, int]]:
    """``(text1, text2, label)`` rows of an AAN TSV (no header; columns label, id1, id2,
    text1, text2); errors name the file and line."""
    rows = []
    for number, line in read_lines(path):
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
    if not rows:
        raise no_rows_error(path, "document pairs")
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

    ``vocab_size`` comes from the training split: the data must be on disk when the run
    starts (``pspikessm prepare`` downloads it).

    Args:
        max_length: longest document, ``<eos>`` included (4000 in LRA).
        min_freq: minimum training count of a character to get its own id.
        download: fetch the LRA release (about 7 GB, no published checksum) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 2
    dual_input = True
    collate_fn = staticmethod(pad_pair_collate)
    resources = (LRA_RELEASE,)
    cache_name = "aan"

    def __init__(
        self,
        data_dir: str | Path = "data/lra_release",
        max_length: int = 4000,
        min_freq: int = 1,
        download: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        require_at_least("max_length", max_length, 2)  # <eos> and at least one token
        self.max_length = max_length
        self.min_freq = min_freq

    def files(self) -> dict[str, Path]:
        name = "new_aan_pairs.train.tsv"
        folder = release_root(self.data_dir, RELEASE_SUBDIR) / RELEASE_SUBDIR
        if (self.data_dir / name).exists() or not folder.is_dir():
            folder = self.data_dir
        return {
            split: folder / f"new_aan_pairs.{infix}.tsv" for split, infix in FILE_SPLITS.items()
        }

    def sources(self) -> list[Path]:
        return require_files(
            "AAN retrieval",
            list(self.files().values()),
            f"new_aan_pairs.{{train,eval,test}}.tsv in {self.data_dir} or "
            f"{self.data_dir / RELEASE_SUBDIR} (the LRA release)",
            [LRA_RELEASE.url],
        )

    def settings(self) -> dict:
        return {"max_length": self.max_length, "min_freq": self.min_freq}

    def build(self, part: str) -> dict:
        rows = {split: read_pairs(path) for split, path in self.files().items()}
        counts: Counter = Counter()
        for text1, text2, _ in rows["train"]:
            counts.update(text1)
            counts.update(text2)
        vocabulary = Vocabulary.build(counts, self.min_freq)
        table = char_table(vocabulary)
        cache: dict = {"vocabulary": vocabulary.tokens}
        with progress("Encoding AAN pairs", sum(map(len, rows.values()))) as advance:
            for split, split_rows in rows.items():
                labels = [label for *_, label in split_rows]
                sides: tuple[list, list] = ([], [])
                for row in split_rows:
                    for side in (0, 1):
                        sides[side].append(
                            encode_chars(row[side], table, self.max_length, vocabulary.eos_id)
                        )
                    advance(1)
                for side in (0, 1):
                    cache[f"{split}_{side}"] = PackedSequences.from_list(
                        sides[side], labels
                    ).state()
        return cache

    def load_split(self, split: str) -> PackedPairs:
        cache = self.preprocessed()
        return PackedPairs(
            PackedSequences(**cache[f"{split}_0"]), PackedSequences(**cache[f"{split}_1"])
        )
