"""What the token tasks share: a vocabulary built from the training split, read lazily."""

from __future__ import annotations

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.vocabulary import Vocabulary


class TokenDataModule(SequenceDataModule):
    """A task whose inputs are token ids: ListOps, Text, Retrieval.

    Subclasses implement :meth:`preprocessed`, which returns the cached preprocessing (built
    once, kept on ``self``) with the training split's vocabulary under ``"vocabulary"``.
    ``vocab_size`` is a property because the CLI links it into the model right after the data
    module is constructed: its first read prepares the data (generating or reading the cache).
    """

    def preprocessed(self) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must implement preprocessed()")

    @property
    def vocabulary(self) -> Vocabulary:
        return Vocabulary(self.preprocessed()["vocabulary"])

    @property
    def vocab_size(self) -> int:  # type: ignore[override]
        return len(self.vocabulary)
