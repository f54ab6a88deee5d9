"""LRA Text: IMDB sentiment at the character level, from ``aclImdb/`` or its tarball."""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from pspikessm.data.cache import cache_key, load_or_build
from pspikessm.data.collate import PackedSequences
from pspikessm.data.dense import seeded_split
from pspikessm.data.download import IMDB, fetch, missing_files_error
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import UNK, Vocabulary

CLASSES = ("neg", "pos")
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(neg|pos)/[^/]+\.txt$")


def read_folder(root: Path, split: str) -> Iterator[tuple[str, str, int]]:
    """``(name, text, label)`` of ``root/aclImdb/<split>/{neg,pos}/*.txt``, sorted by name."""
    for label, name in enumerate(CLASSES):
        for path in sorted((root / "aclImdb" / split / name).glob("*.txt")):
            yield str(path), _decode(path.read_bytes(), path), label


def read_tarball(path: Path) -> dict[str, list[tuple[str, str, int]]]:
    """Both splits straight from ``aclImdb_v1.tar.gz`` (no unpacking needed), sorted by name."""
    splits: dict[str, list[tuple[str, str, int]]] = {"train": [], "test": []}
    with tarfile.open(path) as archive:
        for member in archive:
            match = _MEMBER.search(member.name)
            if member.isfile() and match:
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                name = f"{path}:{member.name}"
                splits[match[1]].append((name, _decode(data, name), CLASSES.index(match[2])))
    return {split: sorted(rows) for split, rows in splits.items()}


def char_table(vocabulary: Vocabulary) -> np.ndarray:
    """A lookup table code point → id (``<unk>`` for characters outside the vocabulary).

    Encoding a review through it is one vectorised gather instead of a dict look-up per
    character (the AAN training split alone holds about a billion characters).
    """
    if len(vocabulary) >= 2**15:
        raise ValueError(f"{len(vocabulary)} characters do not fit int16 ids; raise min_freq")
    table = np.full(0x110000, vocabulary.index[UNK], dtype=np.int32)
    for token, index in vocabulary.index.items():
        if len(token) == 1:
            table[ord(token)] = index
    return table


def encode_chars(text: str, table: np.ndarray, max_length: int, eos_id: int) -> torch.Tensor:
    """The ids (L,) of ``text[: max_length - 1]`` followed by ``<eos>``, as int16."""
    points = np.frombuffer(text[: max_length - 1].encode("utf-32-le"), dtype=np.uint32)
    ids = np.append(table[points], eos_id).astype(np.int16)
    return torch.from_numpy(ids)


def _decode(data: bytes, name: object) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name}: not UTF-8 text ({error})") from error


class IMDBDataModule(TokenDataModule):
    """IMDB reviews as character sequences, 2 classes (neg = 0, pos = 1).

    Reads ``data_dir/aclImdb/{train,test}/{neg,pos}/*.txt`` or, when the folder is absent,
    ``data_dir/aclImdb_v1.tar.gz`` directly. Each review becomes its characters, truncated to
    ``max_length - 1``, then ``<eos>``. The vocabulary holds the characters seen at least
    ``min_freq`` times in the training split (rarer ones map to ``<unk>``). As in LRA and S4,
    the test split doubles as the validation split unless ``val_fraction`` > 0 holds out that
    share of the training reviews (seeded) instead.

    ``vocab_size`` is known only after reading the data: it is computed (and the data
    downloaded, if needed and allowed) when the CLI first asks for it.

    Args:
        max_length: longest sequence, ``<eos>`` included.
        min_freq: minimum training count of a character to get its own id.
        val_fraction: share of training reviews held out for validation (0: test doubles).
        download: fetch ``aclImdb_v1.tar.gz`` (MD5-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 2
    d_input = 1

    def __init__(
        self,
        data_dir: str | Path = "data",
        max_length: int = 4096,
        min_freq: int = 15,
        val_fraction: float = 0.0,
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, **kwargs)
        self.max_length = max_length
        self.min_freq = min_freq
        self.val_fraction = val_fraction
        self.download = download
        self._cache: dict | None = None

    def sources(self) -> tuple[str, list[Path]]:
        """``("folder" | "tarball", files the cache depends on)``."""
        folder = self.data_dir / "aclImdb"
        if all((folder / s / c).is_dir() for s in ("train", "test") for c in CLASSES):
            return "folder", [folder / s / c for s in ("train", "test") for c in CLASSES]
        tarball = self.data_dir / IMDB.filename
        if tarball.exists():
            return "tarball", [tarball]
        if self.download:
            fetch([IMDB], self.data_dir)
            return self.sources()
        raise missing_files_error(
            "IMDB",
            [folder, tarball],
            f"{folder}/{{train,test}}/{{neg,pos}}/*.txt or the tarball {tarball}",
            [IMDB],
        )

    def prepare_data(self) -> None:
        self.preprocessed()

    def preprocessed(self) -> dict:
        if self._cache is None:
            kind, sources = self.sources()
            settings = {
                "task": "imdb",
                "max_length": self.max_length,
                "min_freq": self.min_freq,
                "v": 1,
            }
            key = cache_key(settings, sources)
            self._cache = load_or_build(
                self.data_dir / ".cache" / f"imdb-{key}.pt", lambda: self._build(kind)
            )
        return self._cache

    def _build(self, kind: str) -> dict:
        if kind == "folder":
            reviews = {
                split: list(read_folder(self.data_dir, split)) for split in ("train", "test")
            }
        else:
            reviews = read_tarball(self.data_dir / IMDB.filename)
        counts: Counter = Counter()
        for _, text, _ in reviews["train"]:
            counts.update(text)
        vocabulary = Vocabulary.build(counts, self.min_freq)
        table = char_table(vocabulary)
        cache: dict = {"vocabulary": vocabulary.tokens}
        for split, rows in reviews.items():
            sequences = [
                encode_chars(text, table, self.max_length, vocabulary.eos_id) for _, text, _ in rows
            ]
            truncated = sum(len(text) > self.max_length - 1 for _, text, _ in rows)
            rank_zero_info(
                f"IMDB {split}: {len(rows)} reviews, {truncated} truncated to "
                f"max_length={self.max_length}"
            )
            cache[split] = PackedSequences.from_list(sequences, [y for *_, y in rows]).state()
        return cache

    def load_split(self, split: str) -> PackedSequences:
        cache = self.preprocessed()
        if split == "test" or (split == "val" and self.val_fraction == 0):
            return PackedSequences(**cache["test"])
        train = PackedSequences(**cache["train"])
        held_out = int(len(train) * self.val_fraction)
        kept, val = seeded_split(len(train), held_out, self.seed)
        return subset(train, kept if split == "train" else val)


def subset(data: PackedSequences, index: torch.Tensor) -> PackedSequences:
    """The sequences of ``data`` at ``index`` (repacked)."""
    return PackedSequences.from_list([data[int(i)][0] for i in index], data.targets[index].tolist())
