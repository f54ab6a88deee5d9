"""What the token tasks share: the vocabulary, read before anything is downloaded."""

from __future__ import annotations

from pspikessm.data.base import SequenceDataModule
from pspikessm.data.errors import DataNotFound
from pspikessm.data.vocabulary import Vocabulary


class TokenDataModule(SequenceDataModule):
    """A task whose inputs are token ids: ListOps, Text, Retrieval.

    ``vocab_size`` is a property because the CLI links it into the model right after the data
    module is constructed, on every process and before ``prepare_data`` runs: so it never
    downloads. By default it reads the training split's vocabulary (``"vocabulary"`` in the
    cached preprocessing), building the cache from the local files if there is none yet; a
    task whose vocabulary is known in advance overrides :attr:`vocabulary` instead.
    """

    @property
    def vocabulary(self) -> Vocabulary:
        try:
            return Vocabulary(self.preprocessed()["vocabulary"])
        except DataNotFound as absent:
            raise DataNotFound(
                f"{absent} (Training cannot download it: the model's vocabulary size is read "
                "from the training split before training starts.)",
                absent.missing,
                absent.partial,
            ) from None

    @property
    def vocab_size(self) -> int:  # type: ignore[override]
        return len(self.vocabulary)
