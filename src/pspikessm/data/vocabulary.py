"""Token vocabularies with the special symbols every token task shares, and the character
table that encodes text through one (byte-level IMDB and AAN)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import torch

PAD, UNK, EOS = "<pad>", "<unk>", "<eos>"
SPECIALS = (PAD, UNK, EOS)


class Vocabulary:
    """Maps tokens to ids: ``<pad>`` = 0, ``<unk>`` = 1, ``<eos>`` = 2, then the tokens.

    Build it from the training split only (:meth:`build`) and store ``tokens`` with any cache,
    so validation, test and later runs use the same ids.
    """

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = list(tokens)
        if tuple(self.tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary starts with {SPECIALS}, got {self.tokens[:3]}")
        self.index = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, counts: Counter, min_freq: int = 1) -> Vocabulary:
        """Tokens seen at least ``min_freq`` times, sorted for a stable id assignment."""
        kept = sorted(token for token, count in counts.items() if count >= min_freq)
        return cls([*SPECIALS, *(t for t in kept if t not in SPECIALS)])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(token, unk) for token in tokens]

    @property
    def eos_id(self) -> int:
        return self.index[EOS]


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
