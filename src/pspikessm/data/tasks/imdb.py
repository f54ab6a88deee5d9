"""LRA Text: IMDB sentiment at the character level, from ``aclImdb/`` or its tarball."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from lightning.pytorch.utilities import rank_zero_info

from pspikessm.data.archives import tar_members
from pspikessm.data.collate import PackedSequences
from pspikessm.data.download import IMDB
from pspikessm.data.errors import missing_data, require_at_least
from pspikessm.data.progress import progress
from pspikessm.data.splits import check_fraction, seeded_split
from pspikessm.data.tokens import TokenDataModule
from pspikessm.data.vocabulary import Vocabulary, char_table, encode_chars

CLASSES = ("neg", "pos")
SPLIT_FOLDERS = ("train", "test")
_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(neg|pos)/[^/]+\.txt$")

#: A review: (file name, text, label).
Review = tuple[str, str, int]


def read_folder(root: Path) -> dict[str, list[Review]]:
    """Both splits of ``root/aclImdb/<split>/{neg,pos}/*.txt``, sorted by name."""
    files = {
        split: [
            (path, label)
            for label, name in enumerate(CLASSES)
            for path in sorted((root / "aclImdb" / split / name).glob("*.txt"))
        ]
        for split in SPLIT_FOLDERS
    }
    reviews: dict[str, list[Review]] = {split: [] for split in SPLIT_FOLDERS}
    with progress("Reading IMDB reviews", sum(map(len, files.values()))) as advance:
        for split, paths in files.items():
            for path, label in paths:
                reviews[split].append((str(path), _decode(path.read_bytes(), path), label))
                advance(1)
    return reviews


def read_tarball(path: Path) -> dict[str, list[Review]]:
    """Both splits straight from ``aclImdb_v1.tar.gz`` (no unpacking needed), sorted by name."""
    splits: dict[str, list[Review]] = {split: [] for split in SPLIT_FOLDERS}
    for archive, member in tar_members(path, f"Reading {path.name}"):
        match = _MEMBER.search(member.name)
        if member.isfile() and match:
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            name = f"{path}:{member.name}"
            splits[match[1]].append((name, _decode(data, name), CLASSES.index(match[2])))
    return {split: sorted(rows) for split, rows in splits.items()}


def _decode(data: bytes, name: object) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{name}: not UTF-8 text ({error}); is it a binary file?") from None


class IMDBDataModule(TokenDataModule):
    """IMDB reviews as character sequences, 2 classes (neg = 0, pos = 1).

    Reads ``data_dir/aclImdb/{train,test}/{neg,pos}/*.txt`` or, when the folder is absent,
    ``data_dir/aclImdb_v1.tar.gz`` directly. Each review becomes its characters, truncated to
    ``max_length - 1``, then ``<eos>``. The vocabulary holds the characters seen at least
    ``min_freq`` times in the training split (rarer ones map to ``<unk>``). As in LRA and S4,
    the test split doubles as the validation split unless ``val_fraction`` > 0 holds out that
    share of the training reviews (seeded) instead.

    ``vocab_size`` comes from the training split: the data must be on disk when the run
    starts (``pspikessm prepare`` downloads it).

    Args:
        max_length: longest sequence, ``<eos>`` included.
        min_freq: minimum training count of a character to get its own id.
        val_fraction: share of training reviews held out for validation (0: test doubles).
        download: fetch ``aclImdb_v1.tar.gz`` (MD5-verified) when absent.
        **kwargs: see :class:`SequenceDataModule`.
    """

    num_classes = 2
    resources = (IMDB,)
    cache_name = "imdb"

    def __init__(
        self,
        data_dir: str | Path = "data",
        max_length: int = 4096,
        min_freq: int = 15,
        val_fraction: float = 0.0,
        download: bool = True,
        **kwargs,
    ) -> None:
        super().__init__(data_dir=data_dir, download=download, **kwargs)
        require_at_least("max_length", max_length, 2)  # <eos> and at least one token
        self.max_length = max_length
        self.min_freq = min_freq
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)

    def sources(self) -> list[Path]:
        """The four class folders of ``aclImdb/``, or else the tarball."""
        folder = self.data_dir / "aclImdb"
        folders = [folder / split / name for split in SPLIT_FOLDERS for name in CLASSES]
        if all(path.is_dir() for path in folders):
            return folders
        tarball = self.data_dir / IMDB.filename
        if tarball.exists():
            return [tarball]
        missing = [path for path in folders if not path.is_dir()]
        raise missing_data(
            "IMDB",
            missing if folder.exists() else [folder, tarball],
            f"{folder}/{{train,test}}/{{neg,pos}}/*.txt or the tarball {tarball}",
            [IMDB.url],
            partial=folder.exists(),
        )

    def settings(self) -> dict:
        return {"max_length": self.max_length, "min_freq": self.min_freq}

    def build(self, part: str) -> dict:
        sources = self.sources()
        tarball = sources[0] if len(sources) == 1 else None
        reviews = read_tarball(tarball) if tarball else read_folder(self.data_dir)
        for split, rows in reviews.items():
            if not rows:
                where = tarball or self.data_dir / "aclImdb" / split
                raise ValueError(f"{where}: no {split} reviews (aclImdb/{split}/{{neg,pos}}/*.txt)")
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
        return train.subset(seeded_split(len(train), self.seed, val=self.val_fraction)[split])
